/* fmt.c - cometboxctl's output: sizes and durations in human units (only in
 * text output; --json prints the numbers as the daemon sent them), aligned
 * tables, and JSON documents. */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

void ctl_fmt_size(char *buf, size_t n, double bytes)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
    int u = -1;

    if (bytes < 1024) {
        snprintf(buf, n, "%.0f B", bytes);
        return;
    }
    while (bytes >= 1024 && u < 3) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, n, "%.1f %s", bytes, units[u]);
}

void ctl_fmt_duration(char *buf, size_t n, double us)
{
    long long s = us > 0 ? (long long)(us / 1e6) : 0;

    if (s < 60)
        snprintf(buf, n, "%llds", s);
    else if (s < 3600)
        snprintf(buf, n, "%lldm %llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, n, "%lldh %lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, n, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}

void ctl_print_json(const cJSON *v)
{
    struct cbx_buf b;

    cbx_buf_init(&b);
    cbx_admin_json_write(&b, v);
    cbx_buf_add(&b, "\n", 1);
    if (b.ok)
        fwrite(b.s, 1, b.len, stdout);
    cbx_buf_free(&b);
}

const cJSON *ctl_get(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

double ctl_num(const cJSON *obj, const char *name)
{
    const cJSON *v = ctl_get(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

const char *ctl_str(const cJSON *obj, const char *name)
{
    const cJSON *v = ctl_get(obj, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

struct ctl_table {
    size_t ncols, nrows, cap;
    char align[16];
    char **cells; /* owned: nrows * ncols strings, row 0 is the header */
};

struct ctl_table *ctl_table_new(const char *align, const char *const *head)
{
    struct ctl_table *t = calloc(1, sizeof *t);

    if (t == NULL)
        return NULL;
    t->ncols = strlen(align) < sizeof t->align ? strlen(align) : sizeof t->align - 1;
    memcpy(t->align, align, t->ncols);
    ctl_table_add(t, head);
    return t;
}

void ctl_table_add(struct ctl_table *t, const char *const *cells)
{
    if (t == NULL)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (c == NULL)
            return; /* the row is lost; printing shows the others */
        t->cells = c;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "");
    t->nrows++;
}

void ctl_table_print(struct ctl_table *t, FILE *out)
{
    size_t width[16] = { 0 };

    if (t == NULL)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            size_t w = s ? strlen(s) : 0;
            if (w > width[i])
                width[i] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i] ? t->cells[r * t->ncols + i] : "";
            bool last = i + 1 == t->ncols;
            if (t->align[i] == 'r')
                fprintf(out, "%*s", (int)width[i], s);
            else if (last)
                fputs(s, out);
            else
                fprintf(out, "%-*s", (int)width[i], s);
            fputs(last ? "\n" : "  ", out);
        }
    }
}

void ctl_table_free(struct ctl_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}
