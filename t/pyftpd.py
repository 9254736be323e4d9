"""pyftpdlib as a test FTP server: one user with a writable home.
usage: pyftpd.py port root user password"""

import logging
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

port, root, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], \
    sys.argv[4]
logging.basicConfig(level=logging.DEBUG,
                    format="%(asctime)s %(message)s")
auth = DummyAuthorizer()
auth.add_user(user, password, root, perm="elradfmwMT")
FTPHandler.authorizer = auth
FTPHandler.permit_foreign_addresses = False
FTPHandler.banner = "pyftpdlib ready"
# The threaded model: Debian's pyftpdlib 1.5.7 in its default async model
# loses about 1% of data connections with 20 transfers at once, even with
# no ftpfwd in the path (measured: 3 of 240 curl downloads hung when
# talking to it directly; 0 of 240 threaded).
server = ThreadedFTPServer(("127.0.0.1", port), FTPHandler)
server.serve_forever()
