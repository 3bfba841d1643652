// Rows of a batch in groups of similar length, so that each group is padded
// only to its own longest row (the distillation trainer's batches).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace steper::distill::detail {

// Indices into `lengths`, in groups: sorted longest first (ties in index
// order), cut where the groups' padded tokens (rows x the group's longest)
// plus `overhead` per group are least in total. `overhead` is a forward
// pass's fixed cost in tokens; a huge one gives one group.
std::vector<std::vector<std::size_t>> length_groups(const std::vector<std::int64_t>& lengths, std::int64_t overhead);

}  // namespace steper::distill::detail
