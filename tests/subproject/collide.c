/* SPDX-License-Identifier: MIT */
/* A parent's own program, named like one of sockpass's (tests/subproject). */
int main(void) { return 0; }
