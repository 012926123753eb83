/*
 * gen-marc: writes N synthetic MARC21 bibliographic records (ISO 2709, UTF-8)
 * with 852 holdings, for the import and search benchmarks.
 *
 *   gen-marc N ITEMS_PER_BIB_X10 [FIRST] > catalog.mrc
 *
 * Titles, authors and subjects are drawn from words.h with a fixed seed, so
 * two runs write the same file. Each record has 001/003, an ISBN-13 and, on
 * average, ITEMS_PER_BIB_X10/10 holdings with unique barcodes. A title is
 * three common words (70 of them: broad searches) and one rare word, drawn
 * Zipf-like from 32,768 (selective searches). Like a public library's
 * shelves: publication years mostly recent (65% under 5 years old, 5%
 * 20-60, counted from 2026 so that the file stays the same); 008/22 audience
 * 20% juvenile, 10% young adult, else adult; 008/33 40% fiction; call
 * numbers FIC / J FIC / E / YA FIC + author for fiction, Dewey (J before it
 * for juvenile) otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "marc.h"
#include "words.h"

static unsigned long long gen_state = 88172645463325252ULL;

static unsigned gen_rand(void)
{
    gen_state ^= gen_state << 13;
    gen_state ^= gen_state >> 7;
    gen_state ^= gen_state << 17;
    return (unsigned)(gen_state >> 11);
}

static const char *gen_word(void)
{
    return bench_words[gen_rand() % BENCH_NWORDS];
}

/* A rare word, Zipf-like: one of 15 tiers at even odds, then a word of the
 * tier (tier t holds 2^t words), so word k comes up about as often as 1/k. */
static void gen_rare_word(char *out, size_t outlen)
{
    unsigned tier = gen_rand() % BENCH_RARE_BITS;
    unsigned k = (1u << tier) - 1 + gen_rand() % (1u << tier);
    bench_rare_word(k, out, outlen);
}

/* Years since publication, as on a kept public library's shelves: 65%
 * under 5, 20% 5-9, 10% 10-19, 5% 20-60. */
static unsigned gen_age(void)
{
    unsigned r = gen_rand() % 100;
    if (r < 65)
        return gen_rand() % 5;
    if (r < 85)
        return 5 + gen_rand() % 5;
    return r < 95 ? 10 + gen_rand() % 10 : 20 + gen_rand() % 41;
}

/* The shelf: audience (008/22), literary form (008/33), call number. */
typedef struct gen_shelf {
    char audience, form;
    char callno[64];
} gen_shelf_t;

static void gen_shelf(gen_shelf_t *sh, const char *surname)
{
    unsigned who = gen_rand() % 10, fiction = gen_rand() % 10 < 4;
    unsigned dewey = gen_rand() % 1000, decimal = gen_rand() % 100;
    sh->audience = who < 2 ? 'j' : who < 3 ? 'd' : 'e';
    sh->form = fiction ? '1' : '0';
    const char *prefix = sh->audience == 'j' ? "J " : "";
    if (fiction && sh->audience == 'j' && decimal % 2)
        snprintf(sh->callno, sizeof(sh->callno), "E %.3s", surname); /* picture books */
    else if (fiction)
        snprintf(sh->callno, sizeof(sh->callno), "%sFIC %.3s", sh->audience == 'd' ? "YA " : prefix,
                 surname);
    else
        snprintf(sh->callno, sizeof(sh->callno), "%s%03u.%u %.3s", prefix, dewey, decimal, surname);
}

static void gen_isbn13(char out[14], long n)
{
    snprintf(out, 14, "979%09ld", n % 1000000000L);
    int sum = 0;
    for (int i = 0; i < 12; i++)
        sum += (out[i] - '0') * (i % 2 ? 3 : 1);
    out[12] = (char)('0' + (10 - sum % 10) % 10);
    out[13] = '\0';
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: gen-marc N ITEMS_PER_BIB_X10 [FIRST]\n");
        return 2;
    }
    long n = atol(argv[1]);
    int items_x10 = atoi(argv[2]);
    long first = argc == 4 ? atol(argv[3]) : 1;
    static const char *const branches[] = {"DWN", "ALB", "BAR", "CMP", "DWT", "PRK", "RPK"};
    long barcode = first * 10;
    struct buf out = BUF_INIT;
    for (long i = first; i < first + n; i++) {
        arena_t a;
        arena_init(&a);
        marc_record_t r;
        marc_init(&r, "00000nam a2200000 a 4500");
        char id[32], f008[41], isbn[14], title[200], subject[100], year[8], rare[16];
        snprintf(id, sizeof(id), "bench%08ld", i);
        marc_add_control(&a, &r, "001", id);
        marc_add_control(&a, &r, "003", "CarrelBench");
        snprintf(year, sizeof(year), "%u", 2026 - gen_age());
        gen_shelf_t sh;
        gen_shelf(&sh, bench_surnames[i % BENCH_NSURNAMES]);
        const char *callno = sh.callno;
        memset(f008, ' ', 40);
        f008[40] = '\0';
        memcpy(f008, "200101s", 7);
        memcpy(f008 + 7, year, 4);
        memcpy(f008 + 15, "xx", 2);
        f008[22] = sh.audience;
        f008[33] = sh.form;
        memcpy(f008 + 35, "eng", 3);
        f008[39] = 'd';
        marc_add_control(&a, &r, "008", f008);
        gen_isbn13(isbn, i);
        marc_add_subfield(&a, marc_add_field(&a, &r, "020", ' ', ' '), 'a', isbn);
        marc_add_subfield(&a, marc_add_field(&a, &r, "092", ' ', ' '), 'a', callno);
        char author[64];
        snprintf(author, sizeof(author), "%s, %c.", bench_surnames[gen_rand() % BENCH_NSURNAMES],
                 'A' + (int)(gen_rand() % 26));
        marc_add_subfield(&a, marc_add_field(&a, &r, "100", '1', ' '), 'a', author);
        const char *w1 = gen_word(), *w2 = gen_word(), *w3 = gen_word();
        gen_rare_word(rare, sizeof(rare));
        snprintf(title, sizeof(title), "The %s of the %s %s and %s", w1, w2, w3, rare);
        title[4] = (char)(title[4] - 'a' + 'A');
        marc_field_t *t = marc_add_field(&a, &r, "245", '1', '4');
        marc_add_subfield(&a, t, 'a', title);
        marc_field_t *p = marc_add_field(&a, &r, "264", ' ', '1');
        marc_add_subfield(&a, p, 'b', "Bench Press");
        marc_add_subfield(&a, p, 'c', year);
        for (int s = 0; s < 2; s++) {
            snprintf(subject, sizeof(subject), "%s -- %s", gen_word(), gen_word());
            marc_add_subfield(&a, marc_add_field(&a, &r, "650", ' ', '0'), 'a', subject);
        }
        int copies = items_x10 / 10 + ((int)(gen_rand() % 10) < items_x10 % 10 ? 1 : 0);
        for (int c = 0; c < copies; c++) {
            char bc[32];
            snprintf(bc, sizeof(bc), "B%011ld", barcode++);
            marc_field_t *h = marc_add_field(&a, &r, "852", ' ', ' ');
            marc_add_subfield(&a, h, 'a', branches[gen_rand() % 7]);
            marc_add_subfield(&a, h, 'h', callno);
            marc_add_subfield(&a, h, 'p', bc);
            marc_add_subfield(&a, h, '9', "25.00");
        }
        out.len = 0;
        if (marc_write(&r, &out, NULL, 0) != 0 || fwrite(out.data, 1, out.len, stdout) != out.len) {
            fprintf(stderr, "gen-marc: write failed\n");
            return 1;
        }
        arena_free(&a);
    }
    buf_free(&out);
    return 0;
}
