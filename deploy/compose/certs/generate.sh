#!/bin/sh
# Makes a private development CA and server certificates for the compose TLS variant, in this directory:
#   ca.crt (trusted by the services) · redis.crt/.key · postgres.crt/.key · signal.crt/.key (the services'
#   HTTPS, names localhost and every service name). ECDSA P-256, 90 days. Never use these in production:
#   there, cert-manager (deploy/helm) or your PKI issues them. Rerun to rotate; services reload signal.*.
set -eu
cd "$(dirname "$0")"
umask 077
days=90

openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days 365 -subj "/CN=Signal compose dev CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt

issue() { # name, subjectAltName
  openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$1.ext" -out "$1.crt"
  rm -f "$1.csr" "$1.ext"
}
issue redis "DNS:redis,DNS:localhost,IP:127.0.0.1"
issue postgres "DNS:postgres,DNS:localhost,IP:127.0.0.1"
issue signal "DNS:localhost,DNS:ingestion-gateway,DNS:event-processor,DNS:delivery-worker,DNS:identity-hub,DNS:management-api,IP:127.0.0.1"

# Certificates are public; keys are read by the containers' users (redis: 999, services: 1000).
chmod 0644 ./*.crt
chmod 0644 redis.key signal.key postgres.key
rm -f ca.srl ca.key
echo "certificates written to $(pwd); the CA key was deleted (reissue = rerun this script)"
