# Unit tests of the sock_diag codec and the /proc/net/tcp line parser,
# and of peer_uid() against this machine's kernel (t/test_sockdiag.c).
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
binary = os.path.join(here, "test_sockdiag")
if not os.access(binary, os.X_OK):
    print("Bail out! %s is not built (run make check)" % binary)
    sys.exit(255)
os.execv(binary, [binary])
