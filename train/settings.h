// Every setting of ./train declared once: its flag, type, range and default, and where a run keeps
// it (the config.json key --resume restores, the checkpoint record of the recipe). The command line
// (options.c), config.json (rundir.c) and a checkpoint's recipe (state.c) parse and check values
// through this one table, so a value the flag refuses is refused from a file too, with the same
// range, and the message can name the file and the key instead of a flag the user never typed.
// A new setting is a field in Options and one line in settings.c.
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
} SettingType;

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
    unsigned given;     // its bit in Options.given (0: none)
    const char* key;    // the config.json key --resume restores it from (NULL: not restored)
    const char* record; // the checkpoint record that holds it (NULL: none)
} Setting;

typedef enum { SETTING_OK = 0, SETTING_BAD, SETTING_RANGE } SettingStatus;

// The table, ended by an entry whose flag is NULL.
extern const Setting SETTINGS[];

const Setting* setting_by_flag(const char* flag);  // NULL when no setting has that flag
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

#endif
