/* The firmware's version (FW_VERSION); bump MINOR for additions, MAJOR when the mailbox changes incompatibly. */
#ifndef SPLITNIC_FW_VERSION_H
#define SPLITNIC_FW_VERSION_H

#define FW_VERSION_MAJOR 0
#define FW_VERSION_MINOR 1
#define FW_VERSION_PATCH 0

#endif
