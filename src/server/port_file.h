/*
 * port_file.h — the bound ports to $MEMCACHED_PORT_FILENAME (port_file.c).
 */
#ifndef PERCORE_PORT_FILE_H
#define PERCORE_PORT_FILE_H

/* After workers_setup(): write the file if the variable names one. */
void port_file_write(void);

#endif
