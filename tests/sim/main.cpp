// zen_simulation's entry point (the program is tests/sim/simulation.cpp).
int zen_simulation_main(int argc, char** argv);

int main(int argc, char** argv) { return zen_simulation_main(argc, argv); }
