#!/usr/bin/env python3
"""Local infrastructure launcher: Apache Kafka (KRaft, single node) + FerretDB (SQLite).

Stdlib only (Python 3.11+), runs with plain ``python3`` before any venv exists.

    python3 deploy/local/infra.py install
    python3 deploy/local/infra.py up     --state-dir DIR [--kafka-port N] [--mongo-port N] [--partitions N]
                                         [--reuse] [--sasl]
    python3 deploy/local/infra.py status --state-dir DIR [--json]
    python3 deploy/local/infra.py down   --state-dir DIR [--purge]

The code lives in the package next to this file, ``localinfra/`` (see its ``__init__`` and
README.md); the FerretDB source patches in ``patches/``. This file is the entry point and, for
callers that load it by path, the Python API::

    info = start(state_dir, kafka_port=None, mongo_port=None, partitions=1)  # -> dict (== DIR/infra.json)
    stop(state_dir)
    status(state_dir)                                                        # -> dict
    install()                                                                # -> dict of paths
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _package() -> ModuleType:
    """Import localinfra from this directory without putting the directory on sys.path."""
    if "localinfra" in sys.modules:
        return sys.modules["localinfra"]
    init = Path(__file__).resolve().with_name("localinfra") / "__init__.py"
    spec = importlib.util.spec_from_file_location("localinfra", init, submodule_search_locations=[str(init.parent)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["localinfra"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["localinfra"]
        raise
    return module


_pkg = _package()
InfraError = _pkg.InfraError
install, start, stop, status = _pkg.install, _pkg.start, _pkg.stop, _pkg.status
kafka_probe, mongo_probe, mongo_command = _pkg.kafka_probe, _pkg.mongo_probe, _pkg.mongo_command
KAFKA_VERSION, FERRETDB_VERSION, cache_dir = _pkg.KAFKA_VERSION, _pkg.FERRETDB_VERSION, _pkg.cache_dir

if __name__ == "__main__":
    from localinfra.cli import main  # already in sys.modules

    sys.exit(main())
