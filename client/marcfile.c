#include "marcfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "util.h"

#define MARC_RT         0x1D
#define MARC_MIN_RECORD 25 /* a leader and a terminator at the very least */

/* Room for element `n` in an array of `*cap`: doubles, so a file of many small records is linear.
 */
static void *marcfile_grow(void *p, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return p;
    size_t want = *cap ? *cap * 2 : 64;
    void *q = realloc(p, want * size);
    if (q == NULL)
        abort();
    *cap = want;
    return q;
}

static void marcfile_problem(marcfile_t *mf, int64_t position, int64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void marcfile_problem(marcfile_t *mf, int64_t position, int64_t offset, const char *fmt, ...)
{
    mf->problems =
        marcfile_grow(mf->problems, mf->nproblems, &mf->problems_cap, sizeof(*mf->problems));
    marcfile_problem_t *p = &mf->problems[mf->nproblems++];
    p->position = position;
    p->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof(p->message), fmt, ap);
    va_end(ap);
}

static void marcfile_add(marcfile_t *mf, int64_t position, int64_t offset, const uint8_t *data,
                         size_t len, bool xml)
{
    size_t cap = mf->records_cap; /* xml_records (MARCXML texts) grow in step with records */
    if (xml)
        mf->xml_records = marcfile_grow(mf->xml_records, mf->nrecords, &cap, sizeof(char *));
    mf->records = marcfile_grow(mf->records, mf->nrecords, &mf->records_cap, sizeof(*mf->records));
    marcfile_record_t *r = &mf->records[mf->nrecords++];
    r->position = position;
    r->offset = offset;
    r->data = data;
    r->len = len;
    r->xml = xml;
}

/* Bytes found between records in files from real systems. */
static bool marcfile_filler(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == 0 || c == 0x1A;
}

static long marcfile_leader_length(const uint8_t *p, size_t avail)
{
    if (avail < 5)
        return -1;
    long v = 0;
    for (int i = 0; i < 5; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

void marcfile_split_iso2709(marcfile_t *mf, const uint8_t *bytes, size_t size)
{
    size_t pos = 0;
    int64_t position = 0;
    while (pos < size) {
        while (pos < size && marcfile_filler(bytes[pos]))
            pos++;
        if (pos >= size)
            break;
        size_t start = pos;
        position++;
        long declared = marcfile_leader_length(bytes + start, size - start);
        const uint8_t *term = memchr(bytes + start, MARC_RT, size - start);
        size_t end;
        if (declared >= MARC_MIN_RECORD && (size_t)declared <= size - start &&
            bytes[start + (size_t)declared - 1] == MARC_RT) {
            end = start + (size_t)declared; /* the leader is right */
        } else if (term) {
            end = (size_t)(term - bytes) + 1; /* trust the terminator; the server notes it */
        } else {
            if (size - start < MARC_MIN_RECORD)
                marcfile_problem(mf, position, (int64_t)start,
                                 "%zu stray bytes at the end of the file are not a record",
                                 size - start);
            else
                marcfile_problem(mf, position, (int64_t)start,
                                 "the last record has no end-of-record mark (truncated file?)");
            break;
        }
        size_t len = end - start;
        if (len < MARC_MIN_RECORD)
            marcfile_problem(mf, position, (int64_t)start,
                             "an empty or truncated record (%zu bytes) was skipped", len);
        else
            marcfile_add(mf, position, (int64_t)start, bytes + start, len, false);
        pos = end;
    }
}

static bool marcfile_is_record(const xmlNode *n)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "record") == 0;
}

/*
 * One <record> as a document of its own. The namespaces it uses may be
 * declared on an ancestor (the Library of Congress writes
 * <marc:collection xmlns:marc="..."><marc:record>): copying the element into
 * a new document declares them on the copy, so the server can read it alone.
 * Returns a malloc'd string.
 */
static char *marcfile_record_text(xmlNode *record)
{
    xmlDoc *doc = xmlNewDoc((const xmlChar *)"1.0");
    if (doc == NULL)
        abort();
    xmlNode *copy = xmlDocCopyNode(record, doc, 1);
    if (copy == NULL)
        abort();
    xmlDocSetRootElement(doc, copy);
    xmlBuffer *b = xmlBufferCreate();
    if (b == NULL)
        abort();
    if (xmlNodeDump(b, doc, copy, 0, 0) < 0)
        abort();
    char *text = util_xstrdup((const char *)xmlBufferContent(b));
    xmlBufferFree(b);
    xmlFreeDoc(doc);
    return text;
}

static void marcfile_collect_xml(marcfile_t *mf, xmlDoc *doc, xmlNode *n, int64_t *position)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (!marcfile_is_record(n)) {
            marcfile_collect_xml(mf, doc, n->children, position);
            continue;
        }
        (*position)++;
        char *text = marcfile_record_text(n);
        marcfile_add(mf, *position, xmlGetLineNo(n), (const uint8_t *)text, strlen(text), true);
        mf->xml_records[mf->nrecords - 1] = text;
    }
}

static int marcfile_load_xml(marcfile_t *mf, const char *path, char *err, size_t errlen)
{
    xmlDoc *doc =
        xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL) {
        const xmlError *e = xmlGetLastError();
        snprintf(err, errlen, "%s is not well-formed XML (line %d: %s); nothing was loaded", path,
                 e ? e->line : 0, e && e->message ? e->message : "parse error");
        for (char *p = err; *p; p++) /* libxml2's message ends in a line break */
            if (*p == '\n')
                *p = ' ';
        return -1;
    }
    int64_t position = 0;
    marcfile_collect_xml(mf, doc, xmlDocGetRootElement(doc), &position);
    xmlFreeDoc(doc);
    if (mf->nrecords == 0) {
        snprintf(err, errlen,
                 "%s is not MARCXML: it holds no <record> elements; nothing was loaded", path);
        return -1;
    }
    return 0;
}

int marcfile_load(marcfile_t *mf, const char *path, char *err, size_t errlen)
{
    memset(mf, 0, sizeof(*mf));
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t head[512];
    size_t n = fread(head, 1, sizeof(head), f);
    fclose(f);
    size_t i = 0;
    while (i < n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t' ||
                     head[i] == 0xEF || head[i] == 0xBB || head[i] == 0xBF))
        i++;
    if (i < n && head[i] == '<') {
        mf->xml = true;
        return marcfile_load_xml(mf, path, err, errlen);
    }
    mf->bytes = util_read_all(path, &mf->size);
    if (mf->bytes == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    marcfile_split_iso2709(mf, mf->bytes, mf->size);
    return 0;
}

void marcfile_free(marcfile_t *mf)
{
    if (mf->xml_records)
        for (size_t i = 0; i < mf->nrecords; i++)
            free(mf->xml_records[i]);
    free(mf->xml_records);
    free(mf->bytes);
    free(mf->records);
    free(mf->problems);
    memset(mf, 0, sizeof(*mf));
}
