# Unit tests of the line parser and the mux decoder (t/test_ftpparse.c).
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
binary = os.path.join(here, "test_ftpparse")
if not os.access(binary, os.X_OK):
    print("Bail out! %s is not built (run make check)" % binary)
    sys.exit(255)
os.execv(binary, [binary])
