/*
 * words: the vocabulary of the generated bench catalog, shared by the record
 * generator and the search workload so that searches hit like real ones do.
 */
#ifndef CARREL_BENCH_WORDS_H
#define CARREL_BENCH_WORDS_H

#include <stdio.h>

static const char *const bench_words[] = {
    "river",      "history",   "garden",    "winter",       "city",       "ocean",
    "mountain",   "children",  "war",       "love",         "science",    "cooking",
    "music",      "journey",   "island",    "shadow",       "light",      "machine",
    "forest",     "kingdom",   "letters",   "secret",       "family",     "summer",
    "stars",      "america",   "poetry",    "painting",     "economy",    "birds",
    "medicine",   "dragon",    "empire",    "railroad",     "harbor",     "library",
    "mystery",    "detective", "horses",    "baseball",     "jazz",       "teacher",
    "village",    "memory",    "silence",   "storm",        "desert",     "bridge",
    "revolution", "nature",    "computer",  "language",     "philosophy", "travel",
    "ghost",      "queen",     "engineer",  "mathematics",  "weather",    "mirror",
    "lantern",    "orchard",   "voyage",    "connecticut",  "hartford",   "whaling",
    "factory",    "insurance", "democracy", "architecture",
};

static const char *const bench_surnames[] = {
    "Smith",     "Johnson",  "Williams",  "Brown",   "Jones",    "Garcia",   "Miller",   "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez",   "Gonzalez", "Wilson",   "Anderson", "Thomas",
    "Taylor",    "Moore",    "Jackson",   "Martin",  "Lee",      "Perez",    "Thompson", "White",
    "Harris",    "Sanchez",  "Clark",     "Ramirez", "Lewis",    "Robinson", "Walker",   "Young",
    "Allen",     "King",     "Wright",    "Scott",   "Torres",   "Nguyen",   "Hill",     "Flores",
};

#define BENCH_NWORDS    (sizeof(bench_words) / sizeof(bench_words[0]))
#define BENCH_NSURNAMES (sizeof(bench_surnames) / sizeof(bench_surnames[0]))

/* The rare vocabulary: 32,768 made-up words of three syllables (word k is
 * syllables k % 32, k / 32 % 32 and k / 1024), drawn Zipf-like by gen-marc so
 * that a few are common and most match a handful of titles: selective
 * searches. The syllables end in a, o, u or n, endings the English stemmer
 * leaves alone, so a word is its own search term. */
static const char *const bench_syllables[32] = {
    "ba", "bo", "da",  "do",  "ga",  "gu",  "ka",  "ko",  "la",  "lo",  "ma",
    "mu", "na", "nu",  "pa",  "po",  "ra",  "ro",  "ta",  "tu",  "va",  "vo",
    "za", "zu", "bar", "dun", "kan", "lom", "mor", "ran", "tam", "vun",
};
#define BENCH_RARE_BITS 15
#define BENCH_NRARE     (1u << BENCH_RARE_BITS)

/* Word k (0 <= k < BENCH_NRARE) into out (at least 10 bytes). */
static inline void bench_rare_word(unsigned k, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s%s", bench_syllables[k % 32], bench_syllables[k / 32 % 32],
             bench_syllables[k / 1024 % 32]);
}

#endif
