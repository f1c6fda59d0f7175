"""The ``payments`` console command: every process of the service and every operator's task
behind one name (``payments --help``)."""
