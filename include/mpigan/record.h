/* The JSON records mpigan writes (metrics.jsonl, run.json, eval records), built with jansson:
 * JSON has no NaN or Inf, and a path is bytes while JSON holds UTF-8, so both go through here. */
#ifndef MPIGAN_RECORD_H
#define MPIGAN_RECORD_H

#include <jansson.h>

/* key: x into obj; a value that is not finite is null, and not_finite[key] says what it was
 * ("nan", "inf", "-inf"). */
void mg_record_real(json_t *obj, json_t *not_finite, const char *key, double x);

/* key: v[0..n) into obj, each value that is not finite null; if there is one, not_finite[key] is
 * an array as long with what each of those was, and null for the others. */
void mg_record_reals(json_t *obj, json_t *not_finite, const char *key, const double *v, int n);

/* s as a JSON string: a path that is not UTF-8 is written with U+FFFD for each non-ASCII byte. */
json_t *mg_record_path(const char *s);

/* Ends a record: the not_finite object goes in when it holds anything, and is released. */
void mg_record_finish(json_t *obj, json_t *not_finite);

#endif
