/*
 * conformance-cmd.h - `floe conformance PLUGIN.so` (conformance.c), called by floe.c's
 * command table with the global options and the command's own arguments (argv[0] is the
 * command name).  Returns the tool's exit status: 0 conformant, 1 not conformant (or the
 * plugin could not be examined), 2 usage error.
 */
#ifndef FLOE_TOOL_CONFORMANCE_CMD_H
#define FLOE_TOOL_CONFORMANCE_CMD_H

int floe_tool_conformance(const char *plugin_path, int no_system, int argc, char **argv);

#endif /* FLOE_TOOL_CONFORMANCE_CMD_H */
