// A usage error in zen's words (base/cli.hpp): the words of the command line read as CLI11 reads
// them, and CLI11's exceptions told from the options themselves, never from their what().
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "base/cli.hpp"
#include "base/suggest.hpp"

namespace zen {

namespace {

// "zen" or "zen serve": who speaks, and whose --help to see.
std::string speaker(const CLI::App& app) {
    return app.get_parent() == nullptr ? app.get_name() : speaker(*app.get_parent()) + " " + app.get_name();
}

std::string line_from(const CLI::App& app, const std::string& problem) {
    return speaker(app) + ": " + problem + " (see " + speaker(app) + " --help)";
}

std::string quoted(const std::vector<std::string>& values) {
    std::vector<std::string> each;
    for (const std::string& value : values) each.push_back("'" + value + "'");
    return word_list(each, "and");
}

std::vector<const CLI::App*> subcommands_of(const CLI::App& app) {
    return app.get_subcommands([](const CLI::App*) { return true; });
}

std::vector<std::string> subcommand_names(const CLI::App& app) {
    std::vector<std::string> names;
    for (const CLI::App* sub : subcommands_of(app)) names.push_back(sub->get_name());
    return names;
}

const CLI::Option* find_long(const CLI::App& app, const std::string& name) {
    for (const CLI::Option* option : app.get_options()) {
        if (option->check_lname(name)) return option;
    }
    return nullptr;
}

const CLI::Option* find_short(const CLI::App& app, char letter) {
    for (const CLI::Option* option : app.get_options()) {
        if (option->check_sname(std::string(1, letter))) return option;
    }
    return nullptr;
}

// --- the words, as CLI11 classifies them (App::_recognize) --------------------------------------

enum class Word { mark, long_option, short_option, other };

bool begins_a_name(char c) { return c != '-' && c != '!' && c != ' ' && c != '\n'; }  // valid_first_char

Word kind_of(const CLI::App& app, const std::string& word) {
    if (word == "--") return Word::mark;
    if (word.size() > 2 && word.compare(0, 2, "--") == 0 && begins_a_name(word[2])) return Word::long_option;
    if (word.size() > 1 && word[0] == '-' && begins_a_name(word[1])) {
        const bool digit = word[1] >= '0' && word[1] <= '9';  // -5 is a value unless there is a -5 option
        if (!digit || find_short(app, word[1]) != nullptr) return Word::short_option;
    }
    return Word::other;
}

bool takes_no_value(const CLI::Option& option) { return option.get_items_expected_max() == 0; }

int values_wanted(const CLI::Option& option) {
    return std::min(option.get_type_size_min(), option.get_items_expected_min());
}

std::string unknown_option(const CLI::App& app, const std::string& word) {
    std::vector<std::string> names;  // "--workers", "-p"
    std::vector<std::string> bare;   // "workers", "p": "-wor" and "--p" are near them too
    for (const CLI::Option* option : app.get_options()) {
        for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
        for (const std::string& name : option->get_snames()) names.push_back("-" + name);
    }
    for (const std::string& name : names) bare.push_back(name.substr(name.find_first_not_of('-')));
    std::vector<std::string> near;
    for (std::size_t index : nearest_names(word.substr(word.find_first_not_of('-')), bare)) {
        near.push_back(names[index]);
    }
    return "unknown option " + word + (near.empty() ? "" : ": did you mean " + word_list(near, "or") + "?");
}

std::string unknown_subcommand(const CLI::App& zen, const std::string& word) {
    const std::vector<std::string> names = subcommand_names(zen);
    std::vector<std::string> near;
    for (std::size_t index : nearest_names(word, names)) near.push_back(names[index]);
    return "unknown subcommand '" + word + "': " +
           (near.empty() ? "choose " + word_list(names, "or") : "did you mean " + word_list(near, "or") + "?");
}

// A walk over one (sub)command's words; each check_* reads the word at `at` and moves past it and
// its values, returning the problem or "".
struct Words {
    const CLI::App& app;
    std::vector<std::string> list;
    std::size_t at = 0;
};

// A value, not the next option: any word but an option's or "--"; a negative number too ("-.5").
bool is_value(const CLI::App& app, const std::string& word) {
    const bool negative = word.size() > 1 && word[0] == '-' && (word[1] == '.' || (word[1] >= '0' && word[1] <= '9'));
    return negative || kind_of(app, word) == Word::other;
}

// CLI11 takes the next `count` words whatever they are: `--workers -p 1070` would be --workers '-p'.
std::string take_values(Words& words, const CLI::Option& option, int count) {
    for (int i = 0; i < count; ++i, ++words.at) {
        if (words.at >= words.list.size() || !is_value(words.app, words.list[words.at])) {
            return option.get_name() + " needs a value";
        }
    }
    return {};
}

std::string check_long(Words& words) {
    const std::string word = words.list[words.at++];
    const std::size_t equals = word.find('=');
    const std::string name = word.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
    const std::string value = equals == std::string::npos ? "" : word.substr(equals + 1);
    const CLI::Option* option = find_long(words.app, name);
    if (option == nullptr) return unknown_option(words.app, "--" + name);
    if (takes_no_value(*option)) {
        return equals == std::string::npos ? "" : option->get_name() + ": expected no value, got '" + value + "'";
    }
    return take_values(words, *option, values_wanted(*option) - (value.empty() ? 0 : 1));
}

// -qp 1070: flags, then at most one option that takes the rest of the word or the next words.
std::string check_short(Words& words) {
    const std::string word = words.list[words.at];
    const CLI::Option* option = find_short(words.app, word[1]);
    if (option == nullptr) {
        ++words.at;
        return unknown_option(words.app, word);
    }
    const std::string rest = word.substr(2);
    if (!takes_no_value(*option)) {
        ++words.at;
        return take_values(words, *option, values_wanted(*option) - (rest.empty() ? 0 : 1));
    }
    if (rest.empty()) {
        ++words.at;
    } else if (rest[0] == '=') {
        return option->get_name() + ": expected no value, got '" + rest.substr(1) + "'";
    } else {
        words.list[words.at] = "-" + rest;  // CLI11 reads what follows a flag as a word of its own
    }
    return {};
}

std::string check_option_words(Words& words) {
    while (words.at < words.list.size()) {
        std::string problem;
        switch (kind_of(words.app, words.list[words.at])) {
            case Word::mark:
                return {};  // positionals only from here
            case Word::long_option:
                problem = check_long(words);
                break;
            case Word::short_option:
                problem = check_short(words);
                break;
            case Word::other:
                ++words.at;
                break;
        }
        if (!problem.empty()) return problem;
    }
    return {};
}

// --- CLI11's errors, from the options of the (sub)command that raised them ----------------------

std::vector<CLI::Option*> given_options(CLI::App& app) {
    return app.get_options([](const CLI::Option* option) { return option->count() > 0; });
}

CLI::Validator* validator_at(CLI::Option& option, int index) {
    try {
        return option.get_validator(index);
    } catch (const CLI::OptionNotFound&) {
        return nullptr;
    }
}

// CLI11 checks the options in the order they were declared: the first whose check fails again.
std::string bad_value(CLI::App& app) {
    for (CLI::Option* option : given_options(app)) {
        for (int index = 0; CLI::Validator* check = validator_at(*option, index); ++index) {
            for (const std::string& value : option->results()) {
                std::string copy = value;
                const std::string problem = (*check)(copy);
                if (problem.empty()) continue;
                // Every zen check says "expected ..., got '...'"; anything else stays unsaid.
                return option->get_name() + ": " +
                       (problem.rfind("expected ", 0) == 0 ? problem : "cannot use '" + value + "'");
            }
        }
    }
    return "a value is not usable";
}

// The option whose callback refused its value: the last one run before the first one not run.
std::string unconverted(CLI::App& app) {
    const CLI::Option* refused = nullptr;
    for (const CLI::Option* option : given_options(app)) {
        if (!option->get_callback_run()) break;
        refused = option;
    }
    if (refused == nullptr || refused->results().empty()) return "a value is not usable";
    return refused->get_name() + ": cannot use '" + refused->results().back() + "'";
}

std::string excluded(CLI::App& app) {
    const std::vector<CLI::Option*> given = given_options(app);
    for (std::size_t i = 0; i < given.size(); ++i) {
        for (std::size_t j = i + 1; j < given.size(); ++j) {
            if (given[i]->get_excludes().count(given[j]) > 0 || given[j]->get_excludes().count(given[i]) > 0) {
                return given[i]->get_name() + " and " + given[j]->get_name() + " cannot be used together";
            }
        }
    }
    return "two options cannot be used together";
}

std::string needed(CLI::App& app) {
    for (const CLI::Option* option : given_options(app)) {
        for (const CLI::Option* need : option->get_needs()) {
            if (need->count() == 0) return option->get_name() + " needs " + need->get_name();
        }
    }
    return "an option needs another";
}

std::string missing(CLI::App& app) {
    if (app.get_parent() == nullptr && app.get_subcommands().empty()) {
        return "a subcommand is required: " + word_list(subcommand_names(app), "or");
    }
    for (const CLI::Option* option : app.get_options()) {
        if (!option->get_required() || option->count() > 0) continue;
        if (!option->nonpositional()) return "the " + option->get_name() + " argument must be given";
        return option->get_name() + " must be given";
    }
    return "something must be given";
}

// Arguments left over: an unknown option, or one positional too many.
std::string extras(const CLI::App& app) {
    std::vector<std::string> left;
    for (const std::string& word : app.remaining()) {
        if (word != "--") left.push_back(word);
    }
    if (left.empty()) return "unexpected arguments";
    if (kind_of(app, left.front()) != Word::other) return unknown_option(app, left.front());
    if (app.get_parent() == nullptr) return unknown_subcommand(app, left.front());
    return (left.size() == 1 ? "unexpected argument " : "unexpected arguments ") + quoted(left);
}

// Given more often than it may be: -p 1 -p 2.
std::string repeated(CLI::App& app) {
    for (const CLI::Option* option : given_options(app)) {
        const std::vector<std::string>& values = option->results();
        if (option->get_items_expected_max() > 0 &&
            values.size() > static_cast<std::size_t>(option->get_items_expected_max())) {
            return option->get_name() + ": expected one value, got " + quoted(values);
        }
    }
    return "an option is missing its value or given too often";
}

// The (sub)command whose words raised the error: zen's own extras first, as CLI11 checks them.
CLI::App& raiser(CLI::App& zen, const CLI::ParseError& error) {
    const bool extra = dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr;
    if (zen.get_subcommands().empty() || (extra && !zen.remaining().empty())) return zen;
    return *zen.get_subcommands().front();
}

std::string problem_of(CLI::App& app, const CLI::ParseError& error) {
    if (dynamic_cast<const CLI::ValidationError*>(&error)) return bad_value(app);
    if (dynamic_cast<const CLI::ConversionError*>(&error)) return unconverted(app);
    if (dynamic_cast<const CLI::ExcludesError*>(&error)) return excluded(app);
    if (dynamic_cast<const CLI::RequiresError*>(&error)) return needed(app);
    if (dynamic_cast<const CLI::RequiredError*>(&error)) return missing(app);
    if (dynamic_cast<const CLI::ExtrasError*>(&error)) return extras(app);
    if (dynamic_cast<const CLI::ArgumentMismatch*>(&error)) return repeated(app);
    return "cannot read this command line";
}

}  // namespace

std::string word_error_line(const CLI::App& zen, const std::vector<std::string>& args) {
    Words top{zen, args};
    while (top.at < top.list.size()) {
        const std::string& word = top.list[top.at];
        for (const CLI::App* sub : subcommands_of(zen)) {
            if (sub->check_name(word)) {
                Words words{*sub, std::vector<std::string>(args.begin() + top.at + 1, args.end())};
                const std::string problem = check_option_words(words);
                return problem.empty() ? "" : line_from(*sub, problem);
            }
        }
        const Word kind = kind_of(zen, word);
        if (kind == Word::mark) return {};
        if (kind == Word::other) return line_from(zen, unknown_subcommand(zen, word));
        const std::string problem = kind == Word::long_option ? check_long(top) : check_short(top);
        if (!problem.empty()) return line_from(zen, problem);
    }
    return {};
}

std::string usage_error_line(CLI::App& zen, const CLI::ParseError& error, const std::vector<std::string>& args) {
    std::string line = word_error_line(zen, args);
    if (!line.empty()) return line;
    CLI::App& app = raiser(zen, error);
    return line_from(app, problem_of(app, error));
}

std::optional<int> parse_command_line(CLI::App& zen, int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    std::string line;
    try {
        zen.parse(argc, argv);
        line = word_error_line(zen, args);  // what CLI11 let through: `--quiet=3`, `--aphorisms -p 1070`
    } catch (const CLI::Success& e) {       // --help, --help-all, --version
        return zen.exit(e);
    } catch (const CLI::ParseError& e) {
        line = usage_error_line(zen, e, args);
    }
    if (line.empty()) return std::nullopt;
    std::cerr << line << '\n';
    return 2;
}

}  // namespace zen
