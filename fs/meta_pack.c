/*
 * meta_pack.c - struct topo_meta packed as zigzag varints (see
 * meta_pack.h).
 */
#include <stdint.h>

#include "meta_pack.h"

static uint64_t zigzag(uint64_t v)
{
	return (v << 1) ^ (uint64_t)(-(int64_t)(v >> 63));
}

static uint64_t unzigzag(uint64_t u)
{
	return (u >> 1) ^ (uint64_t)(-(int64_t)(u & 1));
}

size_t meta_put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;
	v = zigzag(v);
	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

uint64_t meta_get_varint(const unsigned char **p)
{
	uint64_t v = 0;
	unsigned shift = 0;
	const unsigned char *q = *p;
	while (*q & 0x80) {
		v |= (uint64_t)(*q++ & 0x7f) << shift;
		shift += 7;
	}
	v |= (uint64_t)*q++ << shift;
	*p = q;
	return unzigzag(v);
}

size_t meta_pack(const struct topo_meta *m, unsigned char *out)
{
	const uint64_t f[10] = {
	    (uint64_t)m->version,
	    (uint64_t)m->create_id,
	    (uint64_t)m->modify_id - (uint64_t)m->version,
	    (uint64_t)m->change_count - (uint64_t)m->version,
	    (uint64_t)m->child_count,
	    (uint64_t)m->num_children,
	    (uint64_t)m->ctime_ns,
	    (uint64_t)m->mtime_ns - (uint64_t)m->ctime_ns,
	    (uint64_t)m->lease,
	    m->size,
	};
	size_t len = 0;
	for (size_t i = 0; i < 10; i++)
		len += meta_put_varint(out + len, f[i]);
	out[len++] = (unsigned char)(m->ephemeral | m->has_data << 1 |
				     m->real_dir << 2 | m->denied << 3);
	return len;
}

const unsigned char *meta_unpack(const unsigned char *p, struct topo_meta *m)
{
	uint64_t f[10];
	for (size_t i = 0; i < 10; i++)
		f[i] = meta_get_varint(&p);
	m->version = (int64_t)f[0];
	m->create_id = (int64_t)f[1];
	m->modify_id = (int64_t)(f[2] + f[0]);
	m->change_count = (int64_t)(f[3] + f[0]);
	m->child_count = (int64_t)f[4];
	m->num_children = (int64_t)f[5];
	m->ctime_ns = (int64_t)f[6];
	m->mtime_ns = (int64_t)(f[7] + f[6]);
	m->lease = (int64_t)f[8];
	m->size = f[9];
	unsigned char flags = *p++;
	m->ephemeral = flags & 1;
	m->has_data = flags & 2;
	m->real_dir = flags & 4;
	m->denied = flags & 8;
	return p;
}
