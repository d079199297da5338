"""Seeds each fuzz target's corpus from the fixtures in events/ (and a few edge cases).

Run by tests/fuzz/run.sh; writes tests/fuzz/corpus/<target>/ (not committed).
"""

import base64
import hashlib
import hmac
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECRET = b"local-test-secret"


def sign(body: bytes) -> bytes:
    return b"sha1=" + hmac.new(SECRET, body, hashlib.sha1).hexdigest().encode()


def main(corpus: pathlib.Path) -> None:
    bodies = [p.read_bytes().rstrip() for p in sorted((ROOT / "events" / "notifications").glob("*.json"))]
    bodies += [
        b'{"type":"notification_event","topic":"x","id":null,"app_id":"a","created_at":1,"data":{"item":{}}}',
        b'{"type":"notification_event","topic":"t","topic":"t","id":"n","app_id":"a","created_at":1,"data":{"item":{}}}',
        b'{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{"item":{"x":"\\u0000\xef\xbf\xbe"}}}',
        b"[" * 130 + b"]" * 130,
    ]
    # Where the envelope parse's fast path must hand over to the serde path:
    # numbers beyond an f64, surrogate escapes, escaped keys, deep nesting.
    head = b'{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,'
    for value in [b"1e400", b"-0", b"18446744073709551616", b"9" * 320, b'"\ud83d\ude00"', b'"\ud800"',
                  b'"\u003cp\u003e"', b"[" * 99 + b"1" + b"]" * 99, b"[" * 127 + b"]" * 127]:
        bodies.append(head + b'"delivery_attempts":' + value + b',"data":{"item":{"id":' + value + b',"x":' + value + b"}}}")
    bodies.append(head + b'"t\u0079pe":"x","data":{"it\u0065m":{},"item":{"contact":{"id":-0}}}}')
    events = [p.read_bytes() for p in sorted((ROOT / "events").glob("*.json"))]
    seeds = {
        "signature": [sign(b) + b"\n" + b for b in bodies] + [b"SHA1=00\n{}", b"  sha1=\t\n"],
        "envelope": bodies,
        "receiver": [b"\x00" + e for e in events] + [bytes([m]) + b for b in bodies for m in (1, 3, 5, 7, 0x41)],
        "record": [b"\x00" + b for b in bodies]
        + [b"\x01" + base64.b64encode(b) for b in bodies]
        + [b"\x02" + b for b in bodies]
        + [b"\x00" + json.dumps({"Records": []}).encode()],
    }
    for target, items in seeds.items():
        folder = corpus / target
        folder.mkdir(parents=True, exist_ok=True)
        for item in items:
            (folder / ("seed-" + hashlib.sha1(item).hexdigest())).write_bytes(item)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
