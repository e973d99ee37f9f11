#!/usr/bin/env bash
# tools/bench/make-ca.sh DIR: a throwaway certificate authority for the benchmark's TLS, shaped
# like the chain DynamoDB's endpoints present (an RSA 2048 leaf signed by an RSA 2048
# intermediate under an RSA 2048 root): DIR/ca.pem (the root, which clients are told to
# trust), DIR/chain.pem (leaf then intermediate, what the server sends) and DIR/leaf.key.
# The leaf names 127.0.0.1 and localhost. Keys never leave DIR; a new CA every run.
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"
days=2
quiet() { "$@" 2>/dev/null; }
quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days "$days" \
    -subj "/CN=payments bench root" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
quiet openssl req -newkey rsa:2048 -nodes -keyout intermediate.key -out intermediate.csr \
    -subj "/CN=payments bench intermediate"
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >intermediate.ext
quiet openssl x509 -req -in intermediate.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out intermediate.pem -days "$days" -extfile intermediate.ext
quiet openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=localhost"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >leaf.ext
quiet openssl x509 -req -in leaf.csr -CA intermediate.pem -CAkey intermediate.key \
    -CAcreateserial -out leaf.pem -days "$days" -extfile leaf.ext
cat leaf.pem intermediate.pem >chain.pem
rm -f ./*.csr ./*.ext ./*.srl ca.key intermediate.key
openssl verify -CAfile ca.pem -untrusted intermediate.pem leaf.pem >/dev/null
