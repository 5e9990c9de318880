# Every third-party dependency of Wager, found once. All of them come from
# Debian bookworm packages (see scripts/install-deps.sh); nothing is fetched.
include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/WagerCAF.cmake)
find_package(Boost 1.81 REQUIRED COMPONENTS json CONFIG)
find_package(spdlog REQUIRED)
find_package(prometheus-cpp REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(PostgreSQL 14 REQUIRED) # libpq, for the journal on PostgreSQL
find_package(CLI11 REQUIRED)
