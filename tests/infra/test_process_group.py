"""ProcessGroup: output prefixes, readiness errors, stopping (no strays)."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from devtools.processes import ProcessGroup, ProcessSpec, StackError
from devtools.stack import free_port, http_ready, port_is_free, tcp_ready

from .conftest import pid_alive


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def _http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


def test_output_is_prefixed_with_the_child_name(tmp_path: Path) -> None:
    log = tmp_path / "stack.log"
    with ProcessGroup(log) as group:
        group.run(ProcessSpec("greeter", _python("print('hello'); print('world')")))
        group.run(
            ProcessSpec(
                "env",
                _python("import os; print(os.environ['GREETING'])"),
                env={"GREETING": "from env"},
            )
        )
    lines = log.read_text().splitlines()
    assert any(line.endswith("greeter  | hello") for line in lines)
    assert any(line.endswith("greeter  | world") for line in lines)
    assert any(line.endswith("env      | from env") for line in lines)


def test_a_child_that_exits_before_it_is_ready_is_reported_after_its_output(
    tmp_path: Path,
) -> None:
    log = tmp_path / "stack.log"
    spec = ProcessSpec(
        "broken",
        _python("import sys; print('cannot open config'); sys.exit(3)"),
        ready=tcp_ready("127.0.0.1", free_port()),
    )
    with ProcessGroup(log) as group, pytest.raises(StackError) as failure:
        group.start(spec)
    assert str(failure.value) == "broken exited (exit code 3) before it was ready"
    assert log.read_text().splitlines()[-1].endswith("broken   | cannot open config")


def test_readiness_timeout_stops_the_child(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    spec = ProcessSpec(
        "sleepy",
        _python(
            f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); "
            "print('starting', flush=True); time.sleep(60)"
        ),
        ready=lambda: False,
        ready_timeout=1.0,
    )
    with ProcessGroup(tmp_path / "stack.log") as group:
        started = time.monotonic()
        with pytest.raises(StackError, match=r"^sleepy was not ready within 1 s$"):
            group.start(spec)
        assert time.monotonic() - started < 5
        assert not pid_alive(int(marker.read_text()))


def test_one_shot_failure_raises(tmp_path: Path) -> None:
    with (
        ProcessGroup(tmp_path / "stack.log") as group,
        pytest.raises(StackError, match=r"migrate failed \(exit code 2\)"),
    ):
        group.run(ProcessSpec("migrate", _python("raise SystemExit(2)")))


def test_leaving_the_group_stops_children_and_grandchildren_in_reverse_order(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pids"
    # Ignores SIGTERM (forces the SIGKILL fallback) and leaves a grandchild in its group.
    stubborn = _python(f"""
        import os, signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen(["sleep", "60"])
        with open({str(pid_file)!r}, "w") as f:
            f.write(f"{{os.getpid()}} {{grandchild.pid}}")
        time.sleep(60)
    """)
    port = free_port()
    log = tmp_path / "stack.log"
    with ProcessGroup(log) as group:
        web = group.start(
            ProcessSpec("web", _http_server(port), ready=http_ready(f"http://127.0.0.1:{port}/"))
        )
        group.start(ProcessSpec("stubborn", stubborn, ready=pid_file.exists, stop_timeout=0.5))
        pids = [web.pid, *map(int, pid_file.read_text().split())]
        assert all(pid_alive(pid) for pid in pids)
        started = time.monotonic()
    assert time.monotonic() - started < 5
    assert not any(pid_alive(pid) for pid in pids)
    assert port_is_free("127.0.0.1", port)
    text = log.read_text()
    assert text.index("stopping stubborn") < text.index("stopping web")
    assert "still running 0.5 s after SIGTERM: SIGKILL" in text


def test_a_sibling_that_dies_while_another_starts_is_reported(tmp_path: Path) -> None:
    with ProcessGroup(tmp_path / "stack.log") as group:
        group.start(ProcessSpec("worker", _python("import time; time.sleep(0.3); exit(1)")))
        waiting = ProcessSpec("api", _python("import time; time.sleep(60)"), ready=lambda: False)
        with pytest.raises(StackError, match=r"^worker exited \(exit code 1\) while api started"):
            group.start(waiting)
        assert not group["api"].running
