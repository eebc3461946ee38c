// Every setting of ./train declared once: its flag, type, range and default, and where a run keeps
// it (the config.json key --resume restores, the checkpoint record of the recipe). The command line
// (options.c), config.json (rundir.c) and a checkpoint's recipe (state.c) parse and check values
// through this one table, so a value the flag refuses is refused from a file too, with the same
// range, and the message can name the file and the key instead of a flag the user never typed.
// The table is also what --help prints (options.c), what config.json holds (rundir.c), what the
// checkpoint's recipe records hold (state.c) and which flags --resume may take from where, so a new
// setting is a field in Options and one entry in settings.c, and nothing else lists the flags.
#ifndef TRAIN_SETTINGS_H
#define TRAIN_SETTINGS_H

#include <stddef.h>

#include "options.h"

typedef enum {
    SET_SWITCH, // a flag without a value (--eval-only); an int 0/1, written 0/1 in config.json
    SET_ONOFF,  // on|off (also 1|0, true|false), an int
    SET_INT,    // an integer in lo..hi, an int
    SET_LONG,   // an integer in lo..hi, a long
    SET_U64,    // an integer in lo..hi, a uint64_t
    SET_FLOAT,  // a finite number in lo..hi, a float
    SET_CHOICE, // one of `choices`, stored as the int in `values` at its position
    SET_WORD,   // one of `choices`, stored as the word itself (a char[16])
    SET_PATH,   // non-empty and shorter than PATH_LEN (a char[PATH_LEN])
    SET_ACTION, // --help, --version: acts at once (options.c), stores nothing
} SettingType;

// Where a resumed run takes the setting from when the command line does not give it (bits).
enum {
    KEEP_NONE = 0,       // nowhere: each command gives its own (--profile, --init, ...)
    KEEP_CONFIG = 1,     // the run's config.json, under `key`
    KEEP_CHECKPOINT = 2, // the checkpoint's `record`; a flag that disagrees with it is an error
};

typedef struct Setting {
    const char* flag; // "--threads"
    SettingType type;
    size_t offset;       // of the value in Options
    double lo, hi;       // numbers: the range the flag accepts
    double dflt;         // numbers and SET_CHOICE: the default as stored (may lie outside lo..hi: 0 =
                         // "every core" for --threads); SET_WORD: the default's position in choices
    const char* choices; // SET_CHOICE, SET_WORD: the accepted words, '|'-separated
    const int* values;   // SET_CHOICE: what each word stores
    const char* word;    // a number's one word alternative ("auto" for --dw-group), stored as word_value
    double word_value;
    const char* key;    // its config.json key (NULL: not written there)
    const char* record; // the checkpoint record that holds it (NULL: none)
    unsigned keep;      // where --resume takes it from (KEEP_* bits)
    // The default as --help shows it and config.json writes it, where the stored default is not a
    // value the flag takes (-1 for --dw-group: the backend's own); NULL: the stored default itself.
    const char* dflt_text;
    // --help: `section` starts a titled group; `arg` names the value where the type's name (N, X,
    // on|off, NAME, PATH) would not say enough; `help` is one paragraph, wrapped by the printer, which
    // adds the default in parentheses unless `no_default`.
    const char* section;
    const char* arg;
    const char* help;
    int no_default;
    // Rules between flags, checked by options.c once the command line is read.
    const char* implies;   // a switch this flag turns on too (--profile-steps: --profile)
    const char* needs;     // a flag that must be given with it
    const char* conflicts; // a flag that cannot be given with it
    int training_only;     // it names a file a training run writes: refused where the command does not train
    int no_train;          // on, the command does not train (--eval-only, --profile, --print-model)
} Setting;

typedef enum { SETTING_OK = 0, SETTING_BAD, SETTING_RANGE } SettingStatus;

// The table, ended by an entry whose flag is NULL.
extern const Setting SETTINGS[];

const Setting* setting_by_flag(const char* flag);  // NULL when no setting has that flag
const Setting* setting_named(const char* flag);    // the same, for flags the code names: aborts if none
// Whether the command line gave s (Options.given holds one bit per table entry).
int setting_given(const Setting* s, const Options* o);
void setting_mark_given(const Setting* s, Options* o);
#define OPTION_GIVEN(o, flag) setting_given(setting_named(flag), (o))
const Setting* setting_by_record(const char* name); // NULL when no setting is kept in that record
// Every setting's default into o; whether s holds its default in o.
void settings_defaults(Options* o);
int setting_is_default(const Setting* s, const Options* o);

// Parses text as s's value and stores it in o: SETTING_OK, SETTING_BAD (not of the setting's kind:
// "abc" for a number, "maybe" for on/off) or SETTING_RANGE (a number outside lo..hi, inf, nan). On
// failure o is unchanged.
SettingStatus setting_parse(const Setting* s, const char* text, Options* o);
// A number read from a file (a checkpoint record): SETTING_OK when the flag would accept it
// (SET_SWITCH and SET_ONOFF: 0 or 1; integer types: integral), else SETTING_RANGE.
SettingStatus setting_check(const Setting* s, double x);
// Numeric settings (SET_SWITCH to SET_FLOAT): store x, read the value.
void setting_store(const Setting* s, Options* o, double x);
double setting_value(const Setting* s, const Options* o);

// For messages: what s accepts ("an integer in 1..1024", "on or off", "cosine, step or constant"),
// its range alone ("1..1024"; for a non-number, the same as the first), and its value in o as the
// flag would be typed ("--threads 2", "--tf32 off", "--deterministic").
void setting_want(const Setting* s, char* buf, size_t len);
void setting_range(const Setting* s, char* buf, size_t len);
void setting_show(const Setting* s, const Options* o, char* buf, size_t len);
void setting_text(const Setting* s, const Options* o, char* buf, size_t len); // "2", "off", "cosine"

// --help: the value's name ("N", "on|off", "N|auto"; "" for a switch) and its default as shown in
// parentheses ("200", "cosine", "backend default"; "" where there is none to show).
void setting_arg(const Setting* s, char* buf, size_t len);
void setting_default_text(const Setting* s, char* buf, size_t len);
// config.json: s's value in o as JSON (1, 0.1, "cosine"); paths and actions are the caller's (0).
int setting_json(const Setting* s, const Options* o, char* buf, size_t len);

#endif
