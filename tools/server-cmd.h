/*
 * server-cmd.h - `floe server` and `floe train --cluster` (server.c), called with the
 * global options and the command's own arguments (argv[0] is the command name).  Both
 * return the tool's exit status.
 */
#ifndef FLOE_TOOL_SERVER_CMD_H
#define FLOE_TOOL_SERVER_CMD_H

int floe_tool_server(const char *plugin_path, int no_system, int argc, char **argv);
int floe_tool_dist_train(const char *plugin_path, int no_system, int argc, char **argv);

#endif /* FLOE_TOOL_SERVER_CMD_H */
