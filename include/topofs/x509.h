/*
 * x509.h - the expiry date (notAfter) of an X.509 certificate, read from
 * its DER or PEM form, for topofs --check: how many days a TLS certificate
 * has left. A small DER walk (Certificate -> tbsCertificate -> validity),
 * no signature or chain check: the TLS library does those.
 */
#ifndef TOPOFS_X509_H
#define TOPOFS_X509_H

#include <stddef.h>
#include <stdint.h>

/* The notAfter of the DER certificate der[0..n) as seconds since the epoch
 * (UTC) in *out. 0, or -EINVAL if it is not a certificate. Pure. */
int topo_x509_der_not_after(const unsigned char *der, size_t n, int64_t *out);

/* The same for the first "-----BEGIN CERTIFICATE-----" block of the PEM
 * text pem[0..n). 0, -EINVAL (no certificate, bad base64 or DER) or
 * -ENOMEM. Pure. */
int topo_x509_pem_not_after(const char *pem, size_t n, int64_t *out);

/* The same for the first certificate in the PEM file `path` (at most
 * 1 MiB read). 0, a negative errno from reading it, or -EINVAL. */
int topo_x509_file_not_after(const char *path, int64_t *out);

/* Whole days from `now` to `not_after` (both seconds since the epoch),
 * rounded down; negative once expired (-1: expired within the last day). */
long topo_x509_days_left(int64_t not_after, int64_t now);

#endif
