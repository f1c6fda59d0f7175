"""One repository per aggregate, each over the process's engine; ``payments.db.database``
bundles them."""
