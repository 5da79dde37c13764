/*
 * view_json.h - the JSON view of a Vitess record: one generic converter
 * between protobuf wire bytes and JSON text, driven by the tables of proto.h
 * (decoding in view_json_decode.c, encoding in view_json_encode.c, the wire
 * format they share in view_wire.c).
 *
 * JSON as Vitess prints it (protobuf's JSON mapping with the proto field
 * names): two-space indent, ": " after keys, trailing newline; fields in
 * number order; proto3 defaults omitted (0, "", false, empty repeated or
 * map; absent messages); enums by name (an unknown number as a number);
 * int64/uint64 as strings; bytes as standard base64; maps as objects with
 * sorted keys; float/double as the shortest text that reads back the same
 * (exponent form below 1e-6 and from 1e21), "NaN", "Infinity", "-Infinity"
 * (and negative zero as -0.0, which JSON readers keep negative).
 *
 * Unknown fields are never lost. Every message object may carry the member
 *
 *     "__unknown_fields": "<base64>"
 *
 * (always its last member): the raw wire bytes, tag included, of every field
 * of that message the table does not describe, in their original order.
 * This includes fields with a known number but an unexpected wire type (as
 * protobuf does), map entries that carry more than a key and a value, and
 * map entries whose key has a NUL byte (JSON readers refuse such keys).
 * Encoding appends those bytes after the known fields, so an edit of the
 * known fields keeps them as they were. Nested messages carry their own.
 *
 * Encoding accepts what decoding prints and what a person would write: the
 * proto or the lowerCamelCase field name, null for a default, enums by name
 * or number, 64-bit integers as strings or numbers, floats as numbers or
 * "NaN"/"Infinity"/"-Infinity"/numeric strings, integral numbers like 1.0,
 * base64 with or without padding (also the URL-safe alphabet). Output is
 * canonical: fields in number order, packed repeated numbers, map entries
 * sorted by key with key and value always written, unknown fields last.
 * So decode(encode(decode(x))) == decode(x), and encode(decode(x)) == x for
 * canonically encoded x.
 */
#ifndef TOPOFS_VIEW_JSON_H
#define TOPOFS_VIEW_JSON_H

#include <stddef.h>

#include "proto.h"

/* The reserved member that carries a message's unknown fields. */
#define VIEW_JSON_UNKNOWN "__unknown_fields"

/* Decode wire[0..len) as message m into new NUL-terminated JSON text *json
 * of *jsonlen bytes (caller frees). 0; -EINVAL for malformed wire data or
 * a string that is not UTF-8, with a one-line reason in err; -ENOMEM. */
int view_json_decode(const struct proto_message *m, const unsigned char *wire,
		     size_t len, char **json, size_t *jsonlen, char *err,
		     size_t errlen);

/* Encode JSON text json[0..len) as message m into new wire bytes *wire of
 * *wirelen bytes (caller frees; not NULL even when empty). 0; -EINVAL with
 * a one-line reason in err (invalid JSON, a wrongly typed value, an unknown
 * field, an out-of-range number, bad base64, an unknown enum name, bad
 * unknown-field bytes), e.g. "Shard.primary_alias.uid: expected a number,
 * got string"; -ENOMEM. */
int view_json_encode(const struct proto_message *m, const char *json,
		     size_t len, unsigned char **wire, size_t *wirelen,
		     char *err, size_t errlen);

#endif
