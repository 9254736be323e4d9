"""pyftpdlib as a test FTP server: one user with a writable home.
usage: pyftpd.py port root user password"""

import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

port, root, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], \
    sys.argv[4]
auth = DummyAuthorizer()
auth.add_user(user, password, root, perm="elradfmwMT")
FTPHandler.authorizer = auth
FTPHandler.permit_foreign_addresses = False
FTPHandler.banner = "pyftpdlib ready"
server = FTPServer(("127.0.0.1", port), FTPHandler)
server.serve_forever()
