/*
 * words: the vocabulary of the generated bench catalog, shared by the record
 * generator and the search workload so that searches hit like real ones do.
 */
#ifndef CARREL_BENCH_WORDS_H
#define CARREL_BENCH_WORDS_H

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

#endif
