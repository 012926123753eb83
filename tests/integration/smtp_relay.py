#!/usr/bin/python3
"""The test SMTP relay: Debian's python3-aiosmtpd (1.4.3) storing what it takes
in a Maildir, as harness.SmtpRelay runs it (with Debian's /usr/bin/python3).

    smtp_relay.py PORT MAILDIR [--cert CRT --key KEY [--implicit]]
                  [--user U --password-file F] [--no-smtputf8]

With a certificate the relay offers STARTTLS and requires it before anything
else (--implicit: TLS from the first byte instead, "smtps"); with a user it requires AUTH (PLAIN or LOGIN, only after STARTTLS) and
refuses MAIL FROM before it. Every TCP connection it accepts adds a line to
MAILDIR/../<port>.connections, so a test can count them. It runs until killed.
"""

import argparse
import asyncio
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


class CountingController(Controller):
    """factory() is called once per accepted connection (STARTTLS keeps it)."""

    def __init__(self, handler, count_path, **kw):
        self.count_path = count_path
        super().__init__(handler, **kw)

    def factory(self):
        with open(self.count_path, "a") as f:
            f.write("connection\n")
        return super().factory()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("maildir")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password-file")
    p.add_argument("--implicit", action="store_true")
    p.add_argument("--no-smtputf8", action="store_true")
    a = p.parse_args()

    kw = {"enable_SMTPUTF8": not a.no_smtputf8}
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        if a.implicit:
            kw.update(ssl_context=ctx)
        else:
            kw.update(tls_context=ctx, require_starttls=True)
    if a.user:
        with open(a.password_file, "rb") as f:
            password = f.read().strip()
        user = a.user.encode()

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user
                  and auth_data.password == password)
            # handled defaults to True, which means "I have answered": aiosmtpd
            # would then say nothing and the client wait forever.
            return AuthResult(success=ok, handled=False, auth_data=auth_data)
        kw.update(auth_required=True, authenticator=authenticator)
        if a.implicit:
            # aiosmtpd 1.4.3 counts only STARTTLS as TLS for AUTH: over implicit TLS it
            # would offer no AUTH at all.
            kw.update(auth_require_tls=False)

    count_path = os.path.join(os.path.dirname(os.path.abspath(a.maildir)),
                              "%d.connections" % a.port)
    controller = CountingController(Mailbox(a.maildir), count_path, hostname="127.0.0.1",
                                    port=a.port, **kw)
    controller.start()
    print("relay listening on 127.0.0.1:%d" % a.port, flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
