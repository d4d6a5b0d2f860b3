/* The JSON records mpigan writes (record.h). */
#include "mpigan/record.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/error.h"

static const char *nonfinite_name(double x)
{
    return isnan(x) ? "nan" : x > 0 ? "inf" : "-inf";
}

void mg_record_real(json_t *obj, json_t *not_finite, const char *key, double x)
{
    if (isfinite(x)) {
        json_object_set_new(obj, key, json_real(x));
        return;
    }
    json_object_set_new(obj, key, json_null());
    json_object_set_new(not_finite, key, json_string(nonfinite_name(x)));
}

void mg_record_reals(json_t *obj, json_t *not_finite, const char *key, const double *v, int n)
{
    json_t *a = json_array(), *what = json_array();
    int any = 0;
    for (int i = 0; i < n; i++) {
        const int finite = isfinite(v[i]);
        json_array_append_new(a, finite ? json_real(v[i]) : json_null());
        json_array_append_new(what, finite ? json_null() : json_string(nonfinite_name(v[i])));
        any |= !finite;
    }
    json_object_set_new(obj, key, a);
    if (any)
        json_object_set(not_finite, key, what);
    json_decref(what);
}

json_t *mg_record_path(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *t = mg_xmalloc(3 * strlen(s) + 1), *p = t;
    for (; *s; s++) {
        if ((unsigned char)*s < 0x80) {
            *p++ = *s;
        } else {
            memcpy(p, "\xef\xbf\xbd", 3);
            p += 3;
        }
    }
    *p = '\0';
    j = json_string(t);
    free(t);
    return j;
}

void mg_record_finish(json_t *obj, json_t *not_finite)
{
    if (json_object_size(not_finite))
        json_object_set(obj, "not_finite", not_finite);
    json_decref(not_finite);
}
