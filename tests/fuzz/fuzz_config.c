/* The YAML configuration loader on any bytes: mg_config_parse (which also checks that the data
 * files exist), and mg_config_parse_networks, whose result must survive mg_config_write and a
 * second parse unchanged (a run's config.yaml repeats the run). */
#define _GNU_SOURCE /* open_memstream */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mpigan/config.h"

#define NAME "fuzz/config.yaml"

/* The keys mg_config_write leaves out (the other format's data files), and where it came from. */
static void normalise(mg_config *c)
{
    memset(c->source, 0, sizeof c->source);
    if (strcmp(c->data.format, "idx") == 0) {
        memset(c->data.path, 0, sizeof c->data.path);
        memset(c->data.test_path, 0, sizeof c->data.test_path);
    } else {
        memset(c->data.train_images, 0, sizeof c->data.train_images);
        memset(c->data.test_images, 0, sizeof c->data.test_images);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The API takes text: a NUL inside ends it, as it would for the caller. */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    static mg_config cfg, again;
    mg_error err = {""};

    fuzz_check_error(mg_config_parse(&cfg, text, NAME, NULL, 0, &err), &err, NAME);

    int rc = mg_config_parse_networks(&cfg, text, NAME, &err);
    fuzz_check_error(rc, &err, NAME);
    if (rc == 0) {
        char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);
        if (!f || mg_config_write(&cfg, f) != 0 || fclose(f) != 0)
            abort();
        rc = mg_config_parse_networks(&again, out, "fuzz/again.yaml", &err);
        if (rc != 0) {
            fprintf(stderr, "fuzz: the written configuration does not read back: %s\n%s", err.msg,
                    out);
            abort();
        }
        normalise(&cfg);
        normalise(&again);
        if (memcmp(&cfg, &again, sizeof cfg) != 0) {
            fprintf(stderr, "fuzz: the written configuration reads back different:\n%s", out);
            abort();
        }
        free(out);
    }
    free(text);
    return 0;
}
