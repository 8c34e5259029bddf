// Slots named by index and generation (src/loop/slot_table.hpp): a token outlives its value
// without ever finding the slot's next one, which is what lets a loop's late events be ignored.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loop/slot_table.hpp"

namespace zen {
namespace {

using Table = SlotTable<std::string>;

std::unique_ptr<std::string> value(std::string text) { return std::make_unique<std::string>(std::move(text)); }

TEST(SlotTable, TokensPackIndexAndGeneration) {
    const Table::Token token = Table::token(7, 3);
    EXPECT_EQ(Table::index_of(token), 7u);
    EXPECT_EQ(Table::generation_of(token), 3u);
    // Neither half leaks into the other, even at its widest.
    const Table::Token widest = Table::token(0xffffffffu, 0xfffffffeu);
    EXPECT_EQ(Table::index_of(widest), 0xffffffffu);
    EXPECT_EQ(Table::generation_of(widest), 0xfffffffeu);
}

TEST(SlotTable, InsertFindRelease) {
    Table table;
    const std::uint32_t a = table.insert(value("a"));
    const std::uint32_t b = table.insert(value("b"));
    EXPECT_NE(a, b);
    ASSERT_NE(table.find(table.token_of(a)), nullptr);
    EXPECT_EQ(*table.find(table.token_of(a)), "a");
    EXPECT_EQ(*table.find(table.token_of(b)), "b");
    EXPECT_EQ(*table.find(b, table.generation(b)), "b");
    EXPECT_EQ(*table.at(a), "a");

    const Table::Token token_a = table.token_of(a);
    table.release(a);
    EXPECT_EQ(table.find(token_a), nullptr);
    EXPECT_EQ(table.at(a), nullptr);  // a free slot holds nothing
    EXPECT_EQ(*table.find(table.token_of(b)), "b");  // the other value is untouched
}

TEST(SlotTable, FindsNothingOutsideTheTable) {
    Table table;
    EXPECT_EQ(table.find(Table::token(0, 0)), nullptr);
    EXPECT_EQ(table.at(0), nullptr);
    table.insert(value("a"));
    EXPECT_EQ(table.find(Table::token(1, 0)), nullptr);
    EXPECT_EQ(table.at(1), nullptr);
    EXPECT_EQ(table.find(Table::token(0, 1)), nullptr);  // a generation the slot has not reached
}

// The point of the generations: the event meant for a client that is gone must not reach the
// client that took its slot.
TEST(SlotTable, AnOldTokenFindsNothingInTheReusedSlot) {
    Table table;
    const std::uint32_t first = table.insert(value("first"));
    const Table::Token old_token = table.token_of(first);
    const std::uint32_t generation = table.generation(first);
    table.release(first);
    const std::uint32_t second = table.insert(value("second"));
    ASSERT_EQ(second, first);  // the same slot...
    EXPECT_NE(table.generation(second), generation);  // ...in its next generation
    EXPECT_NE(table.token_of(second), old_token);
    EXPECT_EQ(table.find(old_token), nullptr);
    EXPECT_EQ(table.find(first, generation), nullptr);
    EXPECT_EQ(*table.find(table.token_of(second)), "second");
    EXPECT_EQ(*table.at(second), "second");  // at() takes no generation: the slot's value now
}

TEST(SlotTable, EveryReleaseMovesTheGenerationOn) {
    Table table;
    std::uint32_t slot = table.insert(value("0"));
    std::vector<Table::Token> tokens{table.token_of(slot)};
    for (int round = 1; round <= 5; ++round) {
        table.release(slot);
        slot = table.insert(value(std::to_string(round)));
        tokens.push_back(table.token_of(slot));
    }
    EXPECT_EQ(table.slots(), 1u);
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) EXPECT_EQ(table.find(tokens[i]), nullptr) << i;
    EXPECT_EQ(*table.find(tokens.back()), "5");
}

TEST(SlotTable, CountsLiveValuesAndSlotsMade) {
    Table table;
    EXPECT_EQ(table.live(), 0u);
    EXPECT_EQ(table.slots(), 0u);
    const std::uint32_t a = table.insert(value("a"));
    const std::uint32_t b = table.insert(value("b"));
    table.insert(value("c"));
    EXPECT_EQ(table.live(), 3u);
    EXPECT_EQ(table.slots(), 3u);
    table.release(a);
    table.release(b);
    EXPECT_EQ(table.live(), 1u);
    EXPECT_EQ(table.slots(), 3u);  // freed slots still count as made
    table.insert(value("d"));
    EXPECT_EQ(table.live(), 2u);
    EXPECT_EQ(table.slots(), 3u);  // reused, none made
    table.insert(value("e"));
    table.insert(value("f"));
    EXPECT_EQ(table.live(), 4u);
    EXPECT_EQ(table.slots(), 4u);  // the free list ran out: one new slot
}

TEST(SlotTable, ReusesTheLatestReleasedSlotFirst) {
    Table table;
    for (int i = 0; i < 5; ++i) table.insert(value(std::to_string(i)));
    table.release(1);
    table.release(3);
    table.release(2);
    EXPECT_EQ(table.insert(value("x")), 2u);
    EXPECT_EQ(table.insert(value("y")), 3u);
    EXPECT_EQ(table.insert(value("z")), 1u);
    EXPECT_EQ(table.insert(value("new")), 5u);  // nothing free: a new slot at the end
}

TEST(SlotTable, ReleaseDestroysTheValue) {
    SlotTable<std::shared_ptr<int>> table;
    auto shared = std::make_shared<int>(42);
    const std::uint32_t slot = table.insert(std::make_unique<std::shared_ptr<int>>(shared));
    EXPECT_EQ(shared.use_count(), 2);
    table.release(slot);
    EXPECT_EQ(shared.use_count(), 1);
}

}  // namespace
}  // namespace zen
