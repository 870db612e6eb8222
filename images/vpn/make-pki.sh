#!/bin/sh
# A small PKI for the VPN scenarios, made offline at build time: a CA, a
# server certificate (CN serveur) and client certificates (CN agence,
# nomade, teletravail), EC P-256 keys, valid ten years. Scenarios copy what
# each machine needs into /etc/openvpn and delete the rest in their setup.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077
days=3650
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days $days \
  -subj "/O=Entreprise/CN=CA VPN Entreprise" -keyout ca.key -out ca.crt \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
issue() { # name extendedKeyUsage
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/O=Entreprise/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days $days -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm "$1.csr" "$1.ext"
}
issue serveur serverAuth
for client in agence nomade teletravail; do issue "$client" clientAuth; done
rm -f ca.srl
chmod 644 ./*.crt
for c in serveur agence nomade teletravail; do openssl verify -CAfile ca.crt "$c.crt" >/dev/null; done
