"""The journey's pytest process, as `kfbox test` and `certify` start it: pytest's own main, in a
process that skips the optional imports kfbox's programs skip."""

from __future__ import annotations

import sys

from kfbox.host.imports import skip_unused_optional_imports

if __name__ == "__main__":
    skip_unused_optional_imports()
    import pytest

    sys.exit(pytest.main(sys.argv[1:]))
