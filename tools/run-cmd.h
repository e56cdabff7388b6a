/*
 * run-cmd.h - `floe run` (run.c): executes a TensorFlow frozen GraphDef on .npy inputs.
 * Called by floe.c's command table with the global options and the command's own
 * arguments (argv[0] is "run"); returns the tool's exit status.
 */
#ifndef FLOE_TOOL_RUN_CMD_H
#define FLOE_TOOL_RUN_CMD_H

int floe_tool_run(const char *plugin_path, int no_system, int argc, char **argv);

#endif /* FLOE_TOOL_RUN_CMD_H */
