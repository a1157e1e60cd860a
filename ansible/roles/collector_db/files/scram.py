# SCRAM-SHA-256 verifier (as PostgreSQL stores it) for the password on stdin; argv[1] is the role.
# The salt is derived from role and password so the verifier is stable across runs.
import base64, hashlib, hmac, sys
pw = sys.stdin.read().rstrip("\n").encode()
salt = hashlib.sha256(b"collector:" + sys.argv[1].encode() + b":" + pw).digest()[:16]
it = 4096
salted = hashlib.pbkdf2_hmac("sha256", pw, salt, it)
client = hmac.new(salted, b"Client Key", "sha256").digest()
server = hmac.new(salted, b"Server Key", "sha256").digest()
b64 = lambda b: base64.b64encode(b).decode()
print(f"SCRAM-SHA-256${it}:{b64(salt)}${b64(hashlib.sha256(client).digest())}:{b64(server)}")
