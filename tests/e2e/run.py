"""Runs every end-to-end test against the daemon named by $MATCHD_BIN and
prints one closing line, "e2e: N passed, M failed"."""

import os
import sys
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    warnings.simplefilter("ignore", ResourceWarning)
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py",
                                                top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=1).run(suite)
    # A test can fail in its body and again in tearDown: count it once.
    failed = len({id(t) for t, _ in result.failures + result.errors})
    passed = max(0, result.testsRun - failed - len(result.skipped))
    print("e2e: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
