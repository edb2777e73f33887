/* A growing text buffer for writing JSON (run records, --json summaries). */
#ifndef UDFHOST_JSON_H
#define UDFHOST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jbuf {
    char *s;    /* NUL-terminated text so far (NULL until something is written) */
    size_t len, cap;
    bool oom;   /* an allocation failed: the text is incomplete */
} jbuf;

/* Append printf-formatted text. */
void jb_printf(jbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Append s as a JSON string literal (quoted, escaped); NULL as null. */
void jb_str(jbuf *b, const char *s);

/* Append dims as a JSON array of numbers. */
void jb_dims(jbuf *b, const uint64_t *dims, uint32_t n);

void jb_free(jbuf *b);

#endif
