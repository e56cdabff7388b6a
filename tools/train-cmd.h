/*
 * train-cmd.h - `floe train` and `floe predict` (train.c), called by floe.c's command
 * table with the global options and the command's own arguments (argv[0] is the
 * command name).  Both return the tool's exit status.
 */
#ifndef FLOE_TOOL_TRAIN_CMD_H
#define FLOE_TOOL_TRAIN_CMD_H

int floe_tool_train(const char *plugin_path, int no_system, int argc, char **argv);
int floe_tool_predict(const char *plugin_path, int no_system, int argc, char **argv);

#endif /* FLOE_TOOL_TRAIN_CMD_H */
