"""pyftpdlib as a test FTP server: one user with a writable home.
usage: pyftpd.py port root user password [certfile keyfile]
It listens on 127.0.0.1, or on $PYFTPD_HOST (::1 for IPv6).
With a certificate it is an FTPS server that requires TLS on the control
and data connections (TLS_FTPHandler, Debian's python3-openssl)."""

import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

port, root, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], \
    sys.argv[4]
Handler = FTPHandler
if len(sys.argv) > 5:
    from OpenSSL import SSL
    # pyftpdlib 1.5.7 drops TLS 1.3 data connections that resume the
    # control's session (curl's do, straight to it, with no ftpfwd):
    # TLS 1.2 here, so the tests cover session ids; vsftpd covers 1.3.
    TLS_FTPHandler.ssl_protocol = SSL.TLSv1_2_METHOD
    TLS_FTPHandler.certfile = sys.argv[5]
    TLS_FTPHandler.keyfile = sys.argv[6]
    TLS_FTPHandler.tls_control_required = True
    TLS_FTPHandler.tls_data_required = True
    Handler = TLS_FTPHandler
logging.basicConfig(level=logging.DEBUG,
                    format="%(asctime)s %(message)s")
auth = DummyAuthorizer()
auth.add_user(user, password, root, perm="elradfmwMT")
Handler.authorizer = auth
Handler.permit_foreign_addresses = False
Handler.banner = "pyftpdlib ready"
# The threaded model: Debian's pyftpdlib 1.5.7 in its default async model
# loses about 1% of data connections with 20 transfers at once, even with
# no ftpfwd in the path (measured: 3 of 240 curl downloads hung when
# talking to it directly; 0 of 240 threaded).
server = ThreadedFTPServer((os.environ.get("PYFTPD_HOST", "127.0.0.1"), port),
                           Handler)
server.serve_forever()
