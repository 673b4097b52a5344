"""A real SMTP server for tests/it/notify.rs (aiosmtpd from PyPI; .ci/run installs it).

Listens on 127.0.0.1:PORT. With --cert/--key it offers STARTTLS and requires it before MAIL and
AUTH; with --user/--password it requires AUTH (PLAIN or LOGIN). Each message received is parsed
with Python's email package and written to OUT/<n>.json: envelope, subject, TLS and login used,
and every MIME part (content type, file name, decoded text). Failed logins are appended to
OUT/auth-failures.log. Runs until killed.
"""

import argparse
import email
import email.policy
import json
import os
import ssl
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    counter = {"n": 0}

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            parts = []
            for part in msg.walk():
                if part.is_multipart():
                    parts.append({"type": part.get_content_type(), "multipart": True})
                    continue
                payload = part.get_payload(decode=True) or b""
                parts.append({
                    "type": part.get_content_type(),
                    "filename": part.get_filename(),
                    "text": payload.decode(part.get_content_charset() or "utf-8", "replace"),
                })
            login = None
            if session.auth_data is not None:
                login = session.auth_data.login.decode("utf-8", "replace")
            counter["n"] += 1
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "subject": str(msg["Subject"]),
                "from": str(msg["From"]),
                "to": str(msg["To"]),
                "date": str(msg["Date"]),
                "tls": session.ssl is not None,
                "login": login,
                "parts": parts,
            }
            tmp = os.path.join(args.out, ".%d.tmp" % counter["n"])
            with open(tmp, "w") as f:
                json.dump(record, f)
            os.rename(tmp, os.path.join(args.out, "%d.json" % counter["n"]))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        if not ok:
            with open(os.path.join(args.out, "auth-failures.log"), "a") as f:
                f.write("%s %s\n" % (mechanism, auth_data.login.decode("utf-8", "replace")))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    kwargs = {}
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        kwargs.update(tls_context=ctx, require_starttls=True)
    if args.user:
        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=bool(args.cert))
    controller = Controller(Handler(), hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    with open(os.path.join(args.out, "ready"), "w") as f:
        f.write("ready\n")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
