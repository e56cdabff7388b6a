#!/bin/sh
# make-test-ca.sh DIR: a throw-away certificate authority for Floe's distributed runtime
# (tests and trying things out; never production).  Writes to DIR:
#   ca.pem ca.key                the CA (EC P-256, 2 days)
#   server.pem server.key        a server certificate for localhost, 127.0.0.1 and ::1
#   client.pem client.key        a client certificate (CN floe-client) for mutual TLS
#   other-ca.pem other.pem other.key   a second, unrelated CA and a client it signed
set -eu
dir=${1:?usage: make-test-ca.sh DIR}
mkdir -p "$dir"
cd "$dir"
gen() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }
gen ca
openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=floe test CA" -out ca.pem 2>/dev/null
gen other-ca
openssl req -x509 -new -key other-ca.key -sha256 -days 2 -subj "/CN=other CA" \
    -out other-ca.pem 2>/dev/null
sign() { # name CN extensions ca
    gen "$1"
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -days 2 \
        -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
sign server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth" ca
sign client floe-client "extendedKeyUsage=clientAuth" ca
sign other floe-other "extendedKeyUsage=clientAuth" other-ca
chmod 600 ./*.key
