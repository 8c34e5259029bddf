// Clients named by slot and generation, for loops whose events and completions come back later
// than the client may live: an event carries the token of the client it was meant for, and one
// that arrives after that client is gone finds nothing, never the slot's next client (a raw fd
// would: the kernel hands a closed fd's number straight out again). Freed slots are reused, the
// latest first; every release moves a slot to its next generation. One thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace zen {

template <class T>
class SlotTable {
public:
    using Token = std::uint64_t;

    static constexpr Token token(std::uint32_t index, std::uint32_t generation) {
        return (Token{generation} << 32) | index;
    }
    static constexpr std::uint32_t index_of(Token token) { return static_cast<std::uint32_t>(token); }
    static constexpr std::uint32_t generation_of(Token token) { return static_cast<std::uint32_t>(token >> 32); }

    // Puts value in a free slot (a new one when none is free); returns its index.
    std::uint32_t insert(std::unique_ptr<T> value) {
        std::uint32_t index;
        if (!free_.empty()) {
            index = free_.back();
            free_.pop_back();
        } else {
            index = static_cast<std::uint32_t>(slots_.size());
            slots_.emplace_back();
        }
        slots_[index].value = std::move(value);
        ++live_;
        return index;
    }

    // The value the token was made for, or null once it is gone.
    T* find(Token token) { return find(index_of(token), generation_of(token)); }
    T* find(std::uint32_t index, std::uint32_t generation) {
        if (index >= slots_.size() || slots_[index].generation != generation) return nullptr;
        return slots_[index].value.get();
    }
    // The value in slot index, or null when the slot is free.
    T* at(std::uint32_t index) { return index < slots_.size() ? slots_[index].value.get() : nullptr; }

    std::uint32_t generation(std::uint32_t index) const { return slots_[index].generation; }
    Token token_of(std::uint32_t index) const { return token(index, slots_[index].generation); }

    // Frees slot index (which must hold a value): the value is destroyed, the slot's generation
    // moves on, and every token made for it finds nothing from now on.
    void release(std::uint32_t index) {
        Slot& slot = slots_[index];
        slot.value.reset();
        ++slot.generation;
        free_.push_back(index);
        --live_;
    }

    // Values held now.
    std::size_t live() const { return live_; }
    // Slots made so far, free ones included: indexes run from 0 to slots() - 1.
    std::uint32_t slots() const { return static_cast<std::uint32_t>(slots_.size()); }

private:
    struct Slot {
        std::unique_ptr<T> value;
        std::uint32_t generation = 0;
    };
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_;
    std::size_t live_ = 0;
};

}  // namespace zen
