# Unit tests of the SFTP v3 codec, and a live run against OpenSSH's
# sftp-server on a socketpair (t/test_sftp.c).
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
binary = os.path.join(here, "test_sftp")
if not os.access(binary, os.X_OK):
    print("Bail out! %s is not built (run make check)" % binary)
    sys.exit(255)
os.execv(binary, [binary])
