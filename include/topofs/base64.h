/*
 * base64.h - standard base64 (RFC 4648 section 4, with padding), shared by
 * the filesystem and the stores: etcd's JSON gateway encodes keys and values
 * in it, and the JSON view of a record writes bytes fields in it.
 */
#ifndef TOPOFS_BASE64_H
#define TOPOFS_BASE64_H

#include <stddef.h>

/* Encode n bytes of in into a new NUL-terminated string *out (caller frees).
 * 0 or -ENOMEM. */
int topo_b64_encode(const void *in, size_t n, char **out);

/* Decode n characters of in into a new buffer *out of *outlen bytes, with one
 * NUL byte after them (caller frees). Strict: length a multiple of 4, only
 * the standard alphabet, '=' only as final padding, unused bits zero.
 * 0, -EINVAL for bad input (*out untouched), or -ENOMEM. */
int topo_b64_decode(const char *in, size_t n, unsigned char **out,
		    size_t *outlen);

#endif
