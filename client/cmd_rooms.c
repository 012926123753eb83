/*
 * Room and program commands: rooms and their occupancy, the free-slot grid,
 * bookings (book, cancel, check in, approve, deny, list), rooms and
 * categories for managers, programs, their sessions and attendance.
 *
 * Times are the library's local time, as the server takes and sends them
 * ("YYYY-MM-DD HH:MM"). A recurring booking (or session series) prints the
 * occurrences made and those refused, and exits 0 when at least one was
 * made, else with the exit code of a refusal (EXIT_SERVER).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

#define ROOMS_MAX_LIST    32 /* --feature and --part given again and again */
#define ROOMS_GRID_COLS   96 /* half hours in a day */
#define ROOMS_GRID_MINUTE 30 /* minutes per grid column */

/* An int32 option in [min, max]: EXIT_OK or EXIT_USAGE (said). */
static int rooms_int(cli_t *cli, const char *what, const char *text, int64_t min, int64_t max,
                     protobuf_c_boolean *has, int32_t *out)
{
    int64_t v;
    if (cli_int_arg(cli, what, text, min, max, &v) != EXIT_OK)
        return EXIT_USAGE;
    *has = 1;
    *out = (int32_t)v;
    return EXIT_OK;
}

/* An id option or argument (1 and up): EXIT_OK or EXIT_USAGE (said). */
static int rooms_id(cli_t *cli, const char *what, const char *text, protobuf_c_boolean *has,
                    int64_t *out)
{
    if (cli_int_arg(cli, what, text, 1, INT64_MAX, out) != EXIT_OK)
        return EXIT_USAGE;
    if (has)
        *has = 1;
    return EXIT_OK;
}

/* Append a string to a list kept with the call (--feature, repeated). */
static int rooms_push(cli_t *cli, cmd_call_t *call, char ***list, size_t *n, const char *s,
                      const char *what)
{
    if (*list == NULL)
        *list = cmd_part(call, ROOMS_MAX_LIST * sizeof(char *));
    if (*n == ROOMS_MAX_LIST)
        return cli_fail(cli, EXIT_USAGE, "%s: at most %d", what, ROOMS_MAX_LIST);
    (*list)[(*n)++] = (char *)s;
    return EXIT_OK;
}

static const char *rooms_str(const char *s)
{
    return s ? s : "";
}

/* "HH:MM" (or the time of "YYYY-MM-DD HH:MM") as minutes since midnight; -1 if malformed. */
static int rooms_minutes(const char *s)
{
    int h, m;
    if (s == NULL)
        return -1;
    const char *sp = strchr(s, ' ');
    if (sp)
        s = sp + 1;
    if (sscanf(s, "%d:%d", &h, &m) != 2 || h < 0 || h > 24 || m < 0 || m > 59)
        return -1;
    return h * 60 + m;
}

/* Who a booking is for, for people: the patron, the group, the program or staff use. */
static void rooms_booking_who(char *out, size_t n, const Carrel__RoomBooking *b)
{
    if (b->card)
        snprintf(out, n, "%s %s", b->card, rooms_str(b->patron_name));
    else if (b->group_name)
        snprintf(out, n, "group %s (%s)", b->group_name, rooms_str(b->group_contact));
    else if (b->program_title)
        snprintf(out, n, "program %s", b->program_title);
    else if (b->has_program_session_id)
        snprintf(out, n, "program session %lld", (long long)b->program_session_id);
    else
        snprintf(out, n, "staff use");
}

static void rooms_print_bookings(Carrel__RoomBooking *const *list, size_t n)
{
    if (n == 0) {
        printf("No bookings.\n");
        return;
    }
    static const char *const headers[] = {"ID",  "ROOM",   "BRANCH", "START",
                                          "END", "STATUS", "FOR",    "PURPOSE"};
    table_t *t = table_new(8, headers);
    for (size_t i = 0; i < n; i++) {
        const Carrel__RoomBooking *b = list[i];
        char id[24], who[300], status[64];
        snprintf(id, sizeof(id), "%lld", (long long)b->id);
        rooms_booking_who(who, sizeof(who), b);
        snprintf(status, sizeof(status), "%s%s", rooms_str(b->status),
                 b->overridden ? " (override)" : "");
        const char *row[] = {id,     b->room_name, b->branch_code, b->start, b->end,
                             status, who,          b->purpose};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static void rooms_print_refusals(Carrel__RoomBookRefusal *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("refused %s - %s: %s: %s\n", rooms_str(list[i]->start), rooms_str(list[i]->end),
               rooms_str(list[i]->reason), rooms_str(list[i]->message));
}

/* Remember a recurring answer with nothing made, for the exit code (cli_outcome_finish). */
static void rooms_note_outcome(const cmd_call_t *call, size_t made,
                               Carrel__RoomBookRefusal *const *refused, size_t n_refused)
{
    cli_outcome_note(call, made, n_refused, n_refused > 0 ? refused[0]->reason : NULL);
}

/* ---------------------------------------------------------------- rooms */

static int build_rooms(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__RoomList *l = CMD_BODY(call, room_list, ROOM_LIST, carrel__room_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, 'b'},
                                         {"date", required_argument, NULL, 'd'},
                                         {"all", no_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "b:d:a", opts, NULL)) != -1) {
        if (ch == 'b')
            l->branch = optarg;
        else if (ch == 'd')
            l->date = optarg;
        else if (ch == 'a')
            l->has_include_inactive = l->include_inactive = 1;
        else
            return EXIT_USAGE;
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void rooms_print_room_line(const Carrel__Room *r, table_t *t)
{
    char id[24], cap[16], occ[64], features[400] = "";
    snprintf(id, sizeof(id), "%lld", (long long)r->id);
    snprintf(cap, sizeof(cap), "%d", r->capacity);
    snprintf(occ, sizeof(occ), "%d booked, %d/%d min", r->bookings_today, r->booked_minutes_today,
             r->open_minutes_today);
    for (size_t i = 0; i < r->n_features; i++)
        snprintf(features + strlen(features), sizeof(features) - strlen(features), "%s%s",
                 i ? "," : "", r->features[i]);
    char kind[200];
    snprintf(kind, sizeof(kind), "%s%s%s%s", rooms_str(r->category),
             r->bookable_by && strcmp(r->bookable_by, "staff") == 0 ? " staff-only" : "",
             r->has_active && !r->active ? " inactive" : "", r->n_part_ids ? " split" : "");
    const char *row[] = {id, r->branch_code, r->name, cap, kind, features, occ, r->now};
    table_add(t, row);
}

static void print_rooms(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__RoomListReply *l = r->rooms;
    printf("Rooms on %s\n", rooms_str(l->date));
    if (l->n_rooms == 0) {
        printf("No rooms.\n");
        return;
    }
    static const char *const headers[] = {"ID",   "BRANCH",   "NAME",  "CAP",
                                          "KIND", "FEATURES", "TODAY", "NOW"};
    table_t *t = table_new(8, headers);
    for (size_t i = 0; i < l->n_rooms; i++)
        rooms_print_room_line(l->rooms[i], t);
    table_print(t, stdout);
    table_free(t);
}

/* ---------------------------------------------------------------- rooms free */

static int build_rooms_free(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__RoomFree *f = CMD_BODY(call, room_free, ROOM_FREE, carrel__room_free__init);
    static const struct option opts[] = {
        {"branch", required_argument, NULL, 'b'}, {"date", required_argument, NULL, 'd'},
        {"days", required_argument, NULL, 'n'},   {"capacity", required_argument, NULL, 'c'},
        {"room", required_argument, NULL, 'r'},   {"feature", required_argument, NULL, 'f'},
        {"staff", no_argument, NULL, 's'},        {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "b:d:n:c:r:f:s", opts, NULL)) != -1) {
        int code = EXIT_OK;
        switch (ch) {
        case 'b':
            f->branch = optarg;
            break;
        case 'd':
            f->date = optarg;
            break;
        case 'n':
            code = rooms_int(cli, "--days", optarg, 1, 90, &f->has_days, &f->days);
            break;
        case 'c':
            code = rooms_int(cli, "--capacity", optarg, 1, 100000, &f->has_capacity, &f->capacity);
            break;
        case 'r':
            code = rooms_id(cli, "--room", optarg, &f->has_room_id, &f->room_id);
            break;
        case 'f':
            code = rooms_push(cli, call, &f->features, &f->n_features, optarg, "--feature");
            break;
        case 's':
            f->has_staff = f->staff = 1;
            break;
        default:
            return EXIT_USAGE;
        }
        if (code != EXIT_OK)
            return code;
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static const Carrel__Room *rooms_find(const Carrel__RoomFreeReply *f, int64_t id)
{
    for (size_t i = 0; i < f->n_rooms; i++)
        if (f->rooms[i]->id == id)
            return f->rooms[i];
    return NULL;
}

/* One day's row of the grid: blank closed, '.' free, '#' taken, per half hour from `first`. */
static void rooms_grid_row(char *cells, int ncols, int first, const Carrel__RoomFreeDay *d)
{
    int opens = rooms_minutes(d->opens), closes = rooms_minutes(d->closes);
    for (int c = 0; c < ncols; c++) {
        int t = first + c * ROOMS_GRID_MINUTE;
        char cell = ' ';
        if (!d->closed && opens >= 0 && closes >= 0 && t >= opens &&
            t + ROOMS_GRID_MINUTE <= closes) {
            cell = '#';
            for (size_t k = 0; k < d->n_free; k++) {
                const char *dash = strchr(d->free[k], '-');
                int from = rooms_minutes(d->free[k]), to = dash ? rooms_minutes(dash + 1) : -1;
                if (from >= 0 && to >= 0 && t >= from && t + ROOMS_GRID_MINUTE <= to)
                    cell = '.';
            }
        }
        cells[c] = cell;
    }
    cells[ncols] = '\0';
}

/* The grid of one day: days [from, to) of the reply share its date. */
static void rooms_grid_day(const Carrel__RoomFreeReply *f, size_t from, size_t to)
{
    int first = 24 * 60, last = 0;
    for (size_t i = from; i < to; i++) {
        const Carrel__RoomFreeDay *d = f->days[i];
        int o = rooms_minutes(d->opens), c = rooms_minutes(d->closes);
        if (d->closed || o < 0 || c < 0)
            continue;
        first = o < first ? o : first;
        last = c > last ? c : last;
    }
    printf("%s\n", rooms_str(f->days[from]->date));
    if (last <= first) {
        printf("  closed\n\n");
        return;
    }
    first -= first % ROOMS_GRID_MINUTE;
    int ncols = (last - first + ROOMS_GRID_MINUTE - 1) / ROOMS_GRID_MINUTE;
    if (ncols > ROOMS_GRID_COLS)
        ncols = ROOMS_GRID_COLS;
    /* The hour above its first half hour. */
    char head[ROOMS_GRID_COLS + 4];
    memset(head, ' ', sizeof(head));
    for (int c = 0; c < ncols; c++) {
        int t = first + c * ROOMS_GRID_MINUTE;
        if (t % 60 == 0) {
            char hh[12];
            snprintf(hh, sizeof(hh), "%02d", t / 60);
            head[c] = hh[0];
            head[c + 1] = hh[1];
        }
    }
    head[ncols + 1] = '\0';
    printf("  %-30s %s\n", "", head);
    for (size_t i = from; i < to; i++) {
        const Carrel__RoomFreeDay *d = f->days[i];
        const Carrel__Room *room = rooms_find(f, d->room_id);
        char label[160], cells[ROOMS_GRID_COLS + 1];
        if (room)
            snprintf(label, sizeof(label), "%s %s (%d)", rooms_str(room->branch_code),
                     rooms_str(room->name), room->capacity);
        else
            snprintf(label, sizeof(label), "room %lld", (long long)d->room_id);
        char cut[200];
        output_cut(cut, sizeof(cut), label, 30);
        rooms_grid_row(cells, ncols, first, d);
        printf("  %-30s %s\n", cut, cells);
    }
    printf("\n");
}

static void print_rooms_free(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__RoomFreeReply *f = r->room_free;
    if (f->n_days == 0) {
        printf("No rooms match.\n");
        return;
    }
    /* The days come per room, then date: draw one block per date, in date order. */
    char **dates = util_xcalloc(f->n_days, sizeof(char *));
    size_t ndates = 0;
    for (size_t i = 0; i < f->n_days; i++) {
        const char *d = rooms_str(f->days[i]->date);
        size_t k = 0;
        while (k < ndates && strcmp(dates[k], d) != 0)
            k++;
        if (k == ndates)
            dates[ndates++] = (char *)d;
    }
    Carrel__RoomFreeDay **same = util_xcalloc(f->n_days, sizeof(*same));
    for (size_t k = 0; k < ndates; k++) {
        size_t n = 0;
        for (size_t i = 0; i < f->n_days; i++)
            if (strcmp(rooms_str(f->days[i]->date), dates[k]) == 0)
                same[n++] = f->days[i];
        Carrel__RoomFreeReply day = *f;
        day.days = same;
        day.n_days = n;
        rooms_grid_day(&day, 0, n);
    }
    printf("'.' free  '#' taken  blank closed; one column per %d minutes\n", ROOMS_GRID_MINUTE);
    free(same);
    free(dates);
}

/* ---------------------------------------------------------------- room book */

static int build_room_book(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__RoomBook *b = CMD_BODY(call, room_book, ROOM_BOOK, carrel__room_book__init);
    call->data = cli_outcome_new(call);
    static const struct option opts[] = {{"start", required_argument, NULL, 's'},
                                         {"end", required_argument, NULL, 'e'},
                                         {"card", required_argument, NULL, 'c'},
                                         {"group", required_argument, NULL, 'g'},
                                         {"contact", required_argument, NULL, 'k'},
                                         {"purpose", required_argument, NULL, 'u'},
                                         {"attendees", required_argument, NULL, 'a'},
                                         {"override", no_argument, NULL, 'o'},
                                         {"repeat", required_argument, NULL, 'r'},
                                         {"until", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "s:e:c:g:k:u:a:or:t:", opts, NULL)) != -1) {
        int code = EXIT_OK;
        switch (ch) {
        case 's':
            b->start = optarg;
            break;
        case 'e':
            b->end = optarg;
            break;
        case 'c':
            b->card = optarg;
            break;
        case 'g':
            b->group_name = optarg;
            break;
        case 'k':
            b->group_contact = optarg;
            break;
        case 'u':
            b->purpose = optarg;
            break;
        case 'a':
            code =
                rooms_int(cli, "--attendees", optarg, 1, 100000, &b->has_attendees, &b->attendees);
            break;
        case 'o':
            b->has_override = b->override = 1;
            break;
        case 'r':
            b->repeat = optarg;
            break;
        case 't':
            b->until = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
        if (code != EXIT_OK)
            return code;
    }
    if (optind != argc - 1 || !b->start || !b->end || (b->repeat && !b->until))
        return cmd_usage(cli, call);
    return rooms_id(cli, "ROOM_ID", argv[optind], &b->has_room_id, &b->room_id);
}

static void print_room_book(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__RoomBookReply *b = r->room_book;
    rooms_note_outcome(call, b->n_made, b->refused, b->n_refused);
    for (size_t i = 0; i < b->n_made; i++) {
        const Carrel__RoomBooking *k = b->made[i];
        char who[300];
        rooms_booking_who(who, sizeof(who), k);
        printf("booking %lld  %s %s  %s - %s  %s  for %s\n", (long long)k->id,
               rooms_str(k->branch_code), rooms_str(k->room_name), rooms_str(k->start),
               rooms_str(k->end), rooms_str(k->status), who);
    }
    rooms_print_refusals(b->refused, b->n_refused);
    if (b->n_made + b->n_refused > 1)
        printf("%zu made, %zu refused\n", b->n_made, b->n_refused);
}

static void print_room_book_json(const cmd_call_t *call, const Carrel__Response *r)
{
    rooms_note_outcome(call, r->room_book->n_made, r->room_book->refused, r->room_book->n_refused);
    cmd_print_body_json(call, r);
}

/* ---------------------------------------------------------------- room change */

/* ID [--reason TEXT] [--series], for the action named by the command's last word. */
static int build_room_change(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__RoomChange *c = CMD_BODY(call, room_change, ROOM_CHANGE, carrel__room_change__init);
    static const struct option opts[] = {{"reason", required_argument, NULL, 'r'},
                                         {"series", no_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    const char *path = call->cmd->path;
    c->action = (char *)(strrchr(path, ' ') + 1);
    int ch;
    while ((ch = getopt_long(argc, argv, "r:s", opts, NULL)) != -1) {
        if (ch == 'r')
            c->reason = optarg;
        else if (ch == 's')
            c->has_series = c->series = 1;
        else
            return EXIT_USAGE;
    }
    bool needs_reason = strcmp(c->action, "cancel") == 0 || strcmp(c->action, "deny") == 0;
    if (optind != argc - 1 || (needs_reason && !c->reason))
        return cmd_usage(cli, call);
    return rooms_id(cli, "BOOKING_ID", argv[optind], &c->has_booking_id, &c->booking_id);
}

static void print_room_change(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    rooms_print_bookings(r->room_change->bookings, r->room_change->n_bookings);
}

/* ---------------------------------------------------------------- room bookings */

static int build_room_bookings(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__RoomBookings *l =
        CMD_BODY(call, room_bookings, ROOM_BOOKINGS, carrel__room_bookings__init);
    static const struct option opts[] = {
        {"patron", required_argument, NULL, 'p'}, {"room", required_argument, NULL, 'r'},
        {"branch", required_argument, NULL, 'b'}, {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},     {"all", no_argument, NULL, 'a'},
        {"limit", required_argument, NULL, 'l'},  {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "p:r:b:f:t:al:", opts, NULL)) != -1) {
        int code = EXIT_OK;
        switch (ch) {
        case 'p':
            l->card = optarg;
            break;
        case 'r':
            code = rooms_id(cli, "--room", optarg, &l->has_room_id, &l->room_id);
            break;
        case 'b':
            l->branch = optarg;
            break;
        case 'f':
            l->from = optarg;
            break;
        case 't':
            l->to = optarg;
            break;
        case 'a':
            l->has_all = l->all = 1;
            break;
        case 'l':
            code = rooms_int(cli, "--limit", optarg, 1, 2000, &l->has_limit, &l->limit);
            break;
        default:
            return EXIT_USAGE;
        }
        if (code != EXIT_OK)
            return code;
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void print_room_bookings(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__RoomBookingList *l = r->room_bookings;
    rooms_print_bookings(l->bookings, l->n_bookings);
    if (l->has_no_shows)
        printf("No-shows on this card: %d\n", l->no_shows);
}

/* ---------------------------------------------------------------- categories */

static int build_room_categories(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)argv;
    CMD_BODY(call, room_category_list, ROOM_CATEGORY_LIST, carrel__room_category_list__init);
    return argc == 1 ? EXIT_OK : cmd_usage(cli, call);
}

static void rooms_print_category(const Carrel__RoomCategory *c, table_t *t)
{
    char len[40], slot[16], ahead[16], limits[64], buffers[40], checkin[16];
    snprintf(len, sizeof(len), "%d-%d min", c->min_minutes, c->max_minutes);
    snprintf(slot, sizeof(slot), "%d", c->slot_minutes);
    snprintf(ahead, sizeof(ahead), "%d d", c->days_ahead);
    snprintf(limits, sizeof(limits), "%d; %d h/wk; %d h/mo; gap %d", c->max_bookings,
             c->max_hours_week, c->max_hours_month, c->gap_minutes);
    snprintf(buffers, sizeof(buffers), "%d+%d min", c->setup_minutes, c->cleanup_minutes);
    snprintf(checkin, sizeof(checkin), "%d min", c->checkin_minutes);
    const char *row[] = {c->code, c->name, len,
                         slot,    ahead,   limits,
                         buffers, checkin, c->needs_approval ? "yes" : "no"};
    table_add(t, row);
}

static const char *const category_headers[] = {
    "CODE",     "NAME",    "LENGTH", "SLOT", "AHEAD", "PER PATRON", "SET-UP+CLEAN-UP",
    "CHECK-IN", "APPROVAL"};

static void print_room_categories(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    table_t *t = table_new(9, category_headers);
    for (size_t i = 0; i < r->room_categories->n_categories; i++)
        rooms_print_category(r->room_categories->categories[i], t);
    table_print(t, stdout);
    table_free(t);
}

static void print_room_category(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    table_t *t = table_new(9, category_headers);
    rooms_print_category(r->room_category, t);
    table_print(t, stdout);
    table_free(t);
}

static int build_room_category_save(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__RoomCategorySave *s =
        CMD_BODY(call, room_category_save, ROOM_CATEGORY_SAVE, carrel__room_category_save__init);
    Carrel__RoomCategory *c = cmd_part(call, sizeof(*c));
    carrel__room_category__init(c);
    s->category = c;
    static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                         {"min", required_argument, NULL, 'm'},
                                         {"max", required_argument, NULL, 'M'},
                                         {"slot", required_argument, NULL, 's'},
                                         {"days-ahead", required_argument, NULL, 'd'},
                                         {"max-bookings", required_argument, NULL, 'b'},
                                         {"max-hours-week", required_argument, NULL, 'w'},
                                         {"max-hours-month", required_argument, NULL, 'o'},
                                         {"gap", required_argument, NULL, 'g'},
                                         {"setup", required_argument, NULL, 'u'},
                                         {"cleanup", required_argument, NULL, 'c'},
                                         {"checkin", required_argument, NULL, 'k'},
                                         {"approval", no_argument, NULL, 'a'},
                                         {"no-approval", no_argument, NULL, 'A'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:m:M:s:d:b:w:o:g:u:c:k:aA", opts, NULL)) != -1) {
        int code = EXIT_OK;
        switch (ch) {
        case 'n':
            c->name = optarg;
            break;
        case 'm':
            code = rooms_int(cli, "--min", optarg, 0, 100000, &c->has_min_minutes, &c->min_minutes);
            break;
        case 'M':
            code = rooms_int(cli, "--max", optarg, 0, 100000, &c->has_max_minutes, &c->max_minutes);
            break;
        case 's':
            code =
                rooms_int(cli, "--slot", optarg, 0, 100000, &c->has_slot_minutes, &c->slot_minutes);
            break;
        case 'd':
            code = rooms_int(cli, "--days-ahead", optarg, 0, 100000, &c->has_days_ahead,
                             &c->days_ahead);
            break;
        case 'b':
            code = rooms_int(cli, "--max-bookings", optarg, 0, 100000, &c->has_max_bookings,
                             &c->max_bookings);
            break;
        case 'w':
            code = rooms_int(cli, "--max-hours-week", optarg, 0, 100000, &c->has_max_hours_week,
                             &c->max_hours_week);
            break;
        case 'o':
            code = rooms_int(cli, "--max-hours-month", optarg, 0, 100000, &c->has_max_hours_month,
                             &c->max_hours_month);
            break;
        case 'g':
            code = rooms_int(cli, "--gap", optarg, 0, 100000, &c->has_gap_minutes, &c->gap_minutes);
            break;
        case 'u':
            code = rooms_int(cli, "--setup", optarg, 0, 100000, &c->has_setup_minutes,
                             &c->setup_minutes);
            break;
        case 'c':
            code = rooms_int(cli, "--cleanup", optarg, 0, 100000, &c->has_cleanup_minutes,
                             &c->cleanup_minutes);
            break;
        case 'k':
            code = rooms_int(cli, "--checkin", optarg, 0, 100000, &c->has_checkin_minutes,
                             &c->checkin_minutes);
            break;
        case 'a':
        case 'A':
            c->has_needs_approval = 1;
            c->needs_approval = ch == 'a';
            break;
        default:
            return EXIT_USAGE;
        }
        if (code != EXIT_OK)
            return code;
    }
    if (optind != argc - 1)
        return cmd_usage(cli, call);
    c->code = argv[optind];
    return EXIT_OK;
}

/* ---------------------------------------------------------------- room save */

static int build_room_save(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__RoomSave *s = CMD_BODY(call, room_save, ROOM_SAVE, carrel__room_save__init);
    Carrel__Room *r = cmd_part(call, sizeof(*r));
    carrel__room__init(r);
    s->room = r;
    static const struct option opts[] = {{"branch", required_argument, NULL, 'b'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"capacity", required_argument, NULL, 'c'},
                                         {"category", required_argument, NULL, 'k'},
                                         {"feature", required_argument, NULL, 'f'},
                                         {"part", required_argument, NULL, 'p'},
                                         {"staff-only", no_argument, NULL, 's'},
                                         {"public", no_argument, NULL, 'P'},
                                         {"inactive", no_argument, NULL, 'i'},
                                         {"active", no_argument, NULL, 'a'},
                                         {"clear-features", no_argument, NULL, 'F'},
                                         {"clear-parts", no_argument, NULL, 'C'},
                                         {NULL, 0, NULL, 0}};
    int64_t *parts = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "b:n:c:k:f:p:sPiaFC", opts, NULL)) != -1) {
        int code = EXIT_OK;
        switch (ch) {
        case 'b':
            r->branch_code = optarg;
            break;
        case 'n':
            r->name = optarg;
            break;
        case 'c':
            code = rooms_int(cli, "--capacity", optarg, 1, 100000, &r->has_capacity, &r->capacity);
            break;
        case 'k':
            r->category = optarg;
            break;
        case 'f':
            code = rooms_push(cli, call, &r->features, &r->n_features, optarg, "--feature");
            break;
        case 'p':
            if (parts == NULL)
                parts = cmd_part(call, ROOMS_MAX_LIST * sizeof(int64_t));
            if (r->n_part_ids == ROOMS_MAX_LIST)
                return cli_fail(cli, EXIT_USAGE, "--part: at most %d", ROOMS_MAX_LIST);
            code = rooms_id(cli, "--part", optarg, NULL, &parts[r->n_part_ids]);
            r->n_part_ids += code == EXIT_OK;
            r->part_ids = parts;
            break;
        case 's':
        case 'P':
            r->bookable_by = ch == 's' ? "staff" : "public";
            break;
        case 'i':
        case 'a':
            r->has_active = 1;
            r->active = ch == 'a';
            break;
        case 'F':
            s->has_clear_features = s->clear_features = 1;
            break;
        case 'C':
            s->has_clear_parts = s->clear_parts = 1;
            break;
        default:
            return EXIT_USAGE;
        }
        if (code != EXIT_OK)
            return code;
    }
    if (optind == argc - 1)
        return rooms_id(cli, "ROOM_ID", argv[optind], &r->has_id, &r->id);
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void print_room(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    static const char *const headers[] = {"ID",   "BRANCH",   "NAME",  "CAP",
                                          "KIND", "FEATURES", "TODAY", "NOW"};
    table_t *t = table_new(8, headers);
    rooms_print_room_line(r->room, t);
    table_print(t, stdout);
    table_free(t);
    if (r->room->n_part_names) {
        printf("Parts:");
        for (size_t i = 0; i < r->room->n_part_names; i++)
            printf(" %s", r->room->part_names[i]);
        printf("\n");
    }
}

/* ---------------------------------------------------------------- programs */

static void rooms_print_session(const Carrel__ProgramSession *s)
{
    char attendance[32] = "";
    if (s->has_attendance)
        snprintf(attendance, sizeof(attendance), "  attendance %d", s->attendance);
    printf("  session %lld  %s - %s  %s%s%s%s%s\n", (long long)s->id, rooms_str(s->start),
           rooms_str(s->end), s->room_name ? s->room_name : "(no room)",
           s->staff_username ? "  staff " : "", rooms_str(s->staff_username),
           s->has_staff_scheduled && !s->staff_scheduled ? " (not scheduled)" : "",
           s->cancelled ? "  cancelled" : attendance);
}

static void rooms_print_program(const Carrel__Program *p)
{
    printf("program %lld  %s  [%s, %s, %s]%s\n", (long long)p->id, rooms_str(p->title),
           rooms_str(p->audience), rooms_str(p->venue), rooms_str(p->branch_code),
           p->cancelled ? "  cancelled" : "");
    if (p->presenter || p->staff_username || p->location)
        printf("  presenter %s  staff %s  %s\n", p->presenter ? p->presenter : "-",
               p->staff_username ? p->staff_username : "-", rooms_str(p->location));
    for (size_t i = 0; i < p->n_sessions; i++)
        rooms_print_session(p->sessions[i]);
}

static int build_programs(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ProgramList *l = CMD_BODY(call, program_list, PROGRAM_LIST, carrel__program_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, 'b'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"to", required_argument, NULL, 't'},
                                         {"audience", required_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "b:f:t:a:", opts, NULL)) != -1) {
        if (ch == 'b')
            l->branch = optarg;
        else if (ch == 'f')
            l->from = optarg;
        else if (ch == 't')
            l->to = optarg;
        else if (ch == 'a')
            l->audience = optarg;
        else
            return EXIT_USAGE;
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static int build_program_show(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ProgramList *l = CMD_BODY(call, program_list, PROGRAM_LIST, carrel__program_list__init);
    if (argc != 2)
        return cmd_usage(cli, call);
    return rooms_id(cli, "PROGRAM_ID", argv[1], &l->has_id, &l->id);
}

static void print_programs(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    if (r->programs->n_programs == 0)
        printf("No programs.\n");
    for (size_t i = 0; i < r->programs->n_programs; i++)
        rooms_print_program(r->programs->programs[i]);
}

/* program add | program edit ID: the program's fields as options. */
static int build_program_save(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ProgramSave *s = CMD_BODY(call, program_save, PROGRAM_SAVE, carrel__program_save__init);
    Carrel__Program *p = cmd_part(call, sizeof(*p));
    carrel__program__init(p);
    s->program = p;
    static const struct option opts[] = {{"title", required_argument, NULL, 't'},
                                         {"description", required_argument, NULL, 'd'},
                                         {"audience", required_argument, NULL, 'a'},
                                         {"venue", required_argument, NULL, 'v'},
                                         {"branch", required_argument, NULL, 'b'},
                                         {"location", required_argument, NULL, 'l'},
                                         {"presenter", required_argument, NULL, 'p'},
                                         {"staff", required_argument, NULL, 's'},
                                         {"category", required_argument, NULL, 'c'},
                                         {"cancel", no_argument, NULL, 'x'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "t:d:a:v:b:l:p:s:c:x", opts, NULL)) != -1) {
        switch (ch) {
        case 't':
            p->title = optarg;
            break;
        case 'd':
            p->description = optarg;
            break;
        case 'a':
            p->audience = optarg;
            break;
        case 'v':
            p->venue = optarg;
            break;
        case 'b':
            p->branch_code = optarg;
            break;
        case 'l':
            p->location = optarg;
            break;
        case 'p':
            p->presenter = optarg;
            break;
        case 's':
            p->staff_username = optarg;
            break;
        case 'c':
            p->category = optarg;
            break;
        case 'x':
            p->has_cancelled = p->cancelled = 1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    bool edit = strcmp(call->cmd->path, "program edit") == 0;
    if (edit) {
        if (optind != argc - 1)
            return cmd_usage(cli, call);
        return rooms_id(cli, "PROGRAM_ID", argv[optind], &p->has_id, &p->id);
    }
    if (optind != argc || !p->title)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void print_program(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    rooms_print_program(r->program);
}

static int build_session_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ProgramSessionSave *s = CMD_BODY(call, program_session_save, PROGRAM_SESSION_SAVE,
                                             carrel__program_session_save__init);
    Carrel__ProgramSession *ses = cmd_part(call, sizeof(*ses));
    carrel__program_session__init(ses);
    s->session = ses;
    call->data = cli_outcome_new(call);
    static const struct option opts[] = {
        {"start", required_argument, NULL, 's'},  {"end", required_argument, NULL, 'e'},
        {"room", required_argument, NULL, 'r'},   {"staff", required_argument, NULL, 'u'},
        {"repeat", required_argument, NULL, 'R'}, {"until", required_argument, NULL, 't'},
        {"override", no_argument, NULL, 'o'},     {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "s:e:r:u:R:t:o", opts, NULL)) != -1) {
        int code = EXIT_OK;
        switch (ch) {
        case 's':
            ses->start = optarg;
            break;
        case 'e':
            ses->end = optarg;
            break;
        case 'r':
            code = rooms_id(cli, "--room", optarg, &ses->has_room_id, &ses->room_id);
            break;
        case 'u':
            ses->staff_username = optarg;
            break;
        case 'R':
            s->repeat = optarg;
            break;
        case 't':
            s->until = optarg;
            break;
        case 'o':
            s->has_override = s->override = 1;
            break;
        default:
            return EXIT_USAGE;
        }
        if (code != EXIT_OK)
            return code;
    }
    if (optind != argc - 1 || !ses->start || !ses->end || (s->repeat && !s->until))
        return cmd_usage(cli, call);
    return rooms_id(cli, "PROGRAM_ID", argv[optind], &ses->has_program_id, &ses->program_id);
}

/* Move a session to another time (and room): its booking is cancelled and made anew
 * under the room rules; without --room it stays in its room. */
static int build_session_move(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ProgramSessionSave *s = CMD_BODY(call, program_session_save, PROGRAM_SESSION_SAVE,
                                             carrel__program_session_save__init);
    Carrel__ProgramSession *ses = cmd_part(call, sizeof(*ses));
    carrel__program_session__init(ses);
    s->session = ses;
    static const struct option opts[] = {{"start", required_argument, NULL, 's'},
                                         {"end", required_argument, NULL, 'e'},
                                         {"room", required_argument, NULL, 'r'},
                                         {"override", no_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "s:e:r:o", opts, NULL)) != -1) {
        int code = EXIT_OK;
        switch (ch) {
        case 's':
            ses->start = optarg;
            break;
        case 'e':
            ses->end = optarg;
            break;
        case 'r':
            code = rooms_id(cli, "--room", optarg, &ses->has_room_id, &ses->room_id);
            break;
        case 'o':
            s->has_override = s->override = 1;
            break;
        default:
            return EXIT_USAGE;
        }
        if (code != EXIT_OK)
            return code;
    }
    if (optind != argc - 1 || !ses->start || !ses->end)
        return cmd_usage(cli, call);
    return rooms_id(cli, "SESSION_ID", argv[optind], &ses->has_id, &ses->id);
}

static int build_session_cancel(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ProgramSessionSave *s = CMD_BODY(call, program_session_save, PROGRAM_SESSION_SAVE,
                                             carrel__program_session_save__init);
    Carrel__ProgramSession *ses = cmd_part(call, sizeof(*ses));
    carrel__program_session__init(ses);
    s->session = ses;
    s->has_cancel = s->cancel = 1;
    if (argc != 2)
        return cmd_usage(cli, call);
    return rooms_id(cli, "SESSION_ID", argv[1], &ses->has_id, &ses->id);
}

static void print_sessions(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__ProgramSessionReply *s = r->program_sessions;
    rooms_note_outcome(call, s->n_made, s->refused, s->n_refused);
    for (size_t i = 0; i < s->n_made; i++)
        rooms_print_session(s->made[i]);
    rooms_print_refusals(s->refused, s->n_refused);
    if (s->n_made + s->n_refused > 1)
        printf("%zu made, %zu refused\n", s->n_made, s->n_refused);
}

static void print_sessions_json(const cmd_call_t *call, const Carrel__Response *r)
{
    rooms_note_outcome(call, r->program_sessions->n_made, r->program_sessions->refused,
                       r->program_sessions->n_refused);
    cmd_print_body_json(call, r);
}

static int build_attendance(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ProgramAttendance *a =
        CMD_BODY(call, program_attendance, PROGRAM_ATTENDANCE, carrel__program_attendance__init);
    if (argc != 3)
        return cmd_usage(cli, call);
    if (rooms_id(cli, "SESSION_ID", argv[1], &a->has_session_id, &a->session_id) != EXIT_OK)
        return EXIT_USAGE;
    return rooms_int(cli, "COUNT", argv[2], 0, 100000, &a->has_attendance, &a->attendance);
}

static void print_session(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    rooms_print_session(r->program_session);
}

#define ROOM_CHANGE_CMD(word, use, what)                                                           \
    {                                                                                              \
        .path = "room " word, .build = build_room_change, .send = CMD_SEND_KEYED,                  \
        .print_text = print_room_change, .needs_login = true, .usage = use, .summary = what        \
    }

const command_t rooms_commands[] = {
    {.path = "rooms",
     .build = build_rooms,
     .send = CMD_SEND_READ,
     .print_text = print_rooms,
     .needs_login = true,
     .usage = "[--branch CODE] [--date YYYY-MM-DD] [--all]",
     .summary = "rooms with the day's occupancy and what is happening now (--all: inactive too)"},
    {.path = "rooms free",
     .build = build_rooms_free,
     .send = CMD_SEND_READ,
     .print_text = print_rooms_free,
     .needs_login = true,
     .usage = "[--branch CODE] [--date YYYY-MM-DD] [--days N] [--capacity N] [--room ID] "
              "[--feature WORD]... [--staff]",
     .summary = "a grid of free slots per room and day ('.' free, '#' taken, blank closed)"},
    {.path = "room book",
     .build = build_room_book,
     .send = CMD_SEND_KEYED,
     .print_text = print_room_book,
     .print_json = print_room_book_json,
     .finish = cli_outcome_finish,
     .needs_login = true,
     .usage = "ROOM_ID --start \"YYYY-MM-DD HH:MM\" --end \"YYYY-MM-DD HH:MM\" (--card CARD | "
              "--group NAME --contact TEXT) [--purpose TEXT] [--attendees N] "
              "[--override] [--repeat weekly|monthly --until YYYY-MM-DD]",
     .summary = "book a room for a patron, a group or staff use (a program session's room: "
                "program session add) "
                "(recurring: librarians and up)"},
    ROOM_CHANGE_CMD("cancel", "BOOKING_ID --reason TEXT [--series]",
                    "cancel a booking (--series: and every later one of its series)"),
    ROOM_CHANGE_CMD("checkin", "BOOKING_ID",
                    "check a booking in (from 15 minutes before it starts)"),
    ROOM_CHANGE_CMD("approve", "BOOKING_ID", "confirm a tentative booking (branch managers)"),
    ROOM_CHANGE_CMD("deny", "BOOKING_ID --reason TEXT",
                    "refuse a tentative booking (branch managers)"),
    {.path = "room bookings",
     .build = build_room_bookings,
     .send = CMD_SEND_READ,
     .print_text = print_room_bookings,
     .needs_login = true,
     .usage = "[--patron CARD] [--room ID] [--branch CODE] [--from DATE] [--to DATE] [--all] "
              "[--limit N]",
     .summary = "bookings by patron, room or branch (--all: cancelled and past ones too)"},
    {.path = "room categories",
     .build = build_room_categories,
     .send = CMD_SEND_READ,
     .print_text = print_room_categories,
     .needs_login = true,
     .usage = "",
     .summary = "the room categories and their rules"},
    {.path = "room category save",
     .build = build_room_category_save,
     .send = CMD_SEND_ONCE,
     .print_text = print_room_category,
     .needs_login = true,
     .usage = "CODE [--name TEXT] [--min MIN] [--max MIN] [--slot MIN] [--days-ahead N] "
              "[--max-bookings N] [--max-hours-week N] [--max-hours-month N] [--gap MIN] "
              "[--setup MIN] [--cleanup MIN] [--checkin MIN] [--approval|--no-approval]",
     .summary = "create or change a room category (coordinators, administrators)"},
    {.path = "room save",
     .build = build_room_save,
     .send = CMD_SEND_ONCE,
     .print_text = print_room,
     .needs_login = true,
     .usage = "[ROOM_ID] [--branch CODE] [--name TEXT] [--capacity N] [--category CODE] "
              "[--feature WORD]... [--part ROOM_ID]... [--clear-features] [--clear-parts] "
              "[--staff-only|--public] [--active|--inactive]",
     .summary = "create a room, or change one (branch managers: their branch)"},
    {.path = "programs",
     .build = build_programs,
     .send = CMD_SEND_READ,
     .print_text = print_programs,
     .needs_login = true,
     .usage = "[--branch CODE] [--from DATE] [--to DATE] [--audience 0-5|6-11|12-18|19+|general]",
     .summary = "programs with sessions in the range (default: the next 30 days)"},
    {.path = "program add",
     .build = build_program_save,
     .send = CMD_SEND_ONCE,
     .print_text = print_program,
     .needs_login = true,
     .usage = "--title TEXT --audience AGES --venue branch|offsite|online --branch CODE "
              "[--description TEXT] [--location TEXT] [--presenter TEXT] [--staff USER] "
              "[--category WORD]",
     .summary = "create a program (branch managers: their branch)"},
    {.path = "program edit",
     .build = build_program_save,
     .send = CMD_SEND_ONCE,
     .print_text = print_program,
     .needs_login = true,
     .usage = "PROGRAM_ID [--title TEXT] [--audience AGES] [--venue V] [--branch CODE] "
              "[--description TEXT] [--location TEXT] [--presenter TEXT] [--staff USER] "
              "[--category WORD] [--cancel]",
     .summary = "change a program's description (not its sessions)"},
    {.path = "program show",
     .build = build_program_show,
     .send = CMD_SEND_READ,
     .print_text = print_programs,
     .needs_login = true,
     .usage = "PROGRAM_ID",
     .summary = "a program and its sessions"},
    {.path = "program session add",
     .build = build_session_add,
     .send = CMD_SEND_KEYED,
     .print_text = print_sessions,
     .print_json = print_sessions_json,
     .finish = cli_outcome_finish,
     .needs_login = true,
     .usage = "PROGRAM_ID --start \"YYYY-MM-DD HH:MM\" --end \"YYYY-MM-DD HH:MM\" [--room ID] "
              "[--staff USER] [--repeat weekly|monthly --until YYYY-MM-DD] [--override]",
     .summary = "add sessions to a program, booking the room for each"},
    {.path = "program session move",
     .build = build_session_move,
     .send = CMD_SEND_KEYED,
     .print_text = print_sessions,
     .needs_login = true,
     .usage = "SESSION_ID --start \"YYYY-MM-DD HH:MM\" --end \"YYYY-MM-DD HH:MM\" [--room ID] "
              "[--override]",
     .summary = "move a session to another time (and room), booking the room anew"},
    {.path = "program session cancel",
     .build = build_session_cancel,
     .send = CMD_SEND_KEYED,
     .print_text = print_sessions,
     .needs_login = true,
     .usage = "SESSION_ID",
     .summary = "cancel a session and its room booking"},
    {.path = "program attendance",
     .build = build_attendance,
     .send = CMD_SEND_ONCE,
     .print_text = print_session,
     .needs_login = true,
     .usage = "SESSION_ID COUNT",
     .summary = "record a session's attendance (online: peak concurrent viewers)"},
    {NULL},
};
