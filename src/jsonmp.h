/*
 * jsonmp: conversion between JSON values (jansson's json_t) and msgpack.
 *
 * matchctl uses it both ways: JSON typed by an operator or read from a
 * JSON Lines file becomes msgpack request parameters, and msgpack results
 * become JSON to print or export.  The mapping is the obvious one: strings
 * to str, integers to int, reals to float64, true/false/null, arrays, and
 * objects to maps with str keys; and back again, with bin read as a string.
 * Pure functions over caller memory; safe from any thread.
 */
#ifndef MATCHD_JSONMP_H
#define MATCHD_JSONMP_H

#include <jansson.h>
#include <msgpack.h>

/*
 * Most arrays and objects nested inside one another that are converted
 * either way ("[[1]]" nests 2).  The daemon refuses requests nested deeper
 * than 16 by default, so 64 leaves room for other servers while keeping
 * the recursion small.
 */
#define JSONMP_DEPTH_MAX 64

/*
 * Packs value with pk.  Integers take msgpack's shortest int form, reals
 * are always float64 (1.0 stays a float), object keys keep jansson's
 * order.  depth_max (at most JSONMP_DEPTH_MAX; larger values are cut to
 * it) bounds the nesting.  Returns 0, -E2BIG when value nests deeper, or
 * -ENOMEM when the packer's writer fails.  On failure part of value may
 * already have been written: the caller discards the output.
 */
int jsonmp_pack(msgpack_packer *pk, const json_t *value, unsigned depth_max);

/*
 * Converts obj into a new JSON value stored in *out (a new reference the
 * caller releases with json_decref).  str and bin become JSON strings;
 * bytes that are not valid UTF-8 become U+FFFD, so the result always
 * dumps as valid JSON.  An unsigned integer above INT64_MAX becomes a real
 * (JSON integers here are 64-bit signed), NaN and infinities become null
 * (JSON has no spelling for them), and ext values become null.  A map key
 * that is not a string is written as the compact JSON text of the key
 * (the integer 7 becomes the key "7"); duplicate keys keep the last value.
 * Returns 0, -E2BIG when obj nests deeper than JSONMP_DEPTH_MAX, or
 * -ENOMEM.  Allocates through jansson.
 */
int jsonmp_from_msgpack(const msgpack_object *obj, json_t **out);

#endif
