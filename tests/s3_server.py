"""The local S3 server for the tests: moto's own server application, served
one request at a time.

moto 5.1.22 checks If-Match / If-None-Match and then writes without a lock,
and `moto_server` serves requests on many threads, so two racing conditional
writes can both pass the check (a lost update that real S3 never allows; seen
here under load). Served on one thread, each request, check and write
included, completes before the next starts: the conditional writes become
atomic, as on S3. Clients still race: they read the same version and send
their writes at once.

moto's dispatcher finds the service of each request by host name, and to do
so lists its ~170 package folders (os.listdir, then isdir on each) on every
S3 request: a fifth of the server's time in the tests (py-spy). Which
service a host name means depends only on the name and the installed moto,
so the answer is kept per host name.

    python tests/s3_server.py HOST PORT
"""

import functools
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


class Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, with each host name's service looked up once."""

    @functools.lru_cache(maxsize=None)
    def get_backend_for_host(self, host):
        return super().get_backend_for_host(host)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = Dispatcher(create_backend_app)
    run_simple(host, port, app, threaded=False, processes=1)


if __name__ == "__main__":
    main()
