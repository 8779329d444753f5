/*
 * notify.c: how the core tells what it does without printing anything.
 * Each change it makes to a directory, and how far a long copy has come,
 * goes to the one listener a program registered; the tools' frame logs
 * the changes and draws the copy's progress line.  Without a listener
 * nothing is told.
 */
#include <stdarg.h>
#include <stdio.h>

#include "core.h"

static const struct core_listener *listener;

void core_listen(const struct core_listener *new_listener)
{
	listener = new_listener;
}

void core_note(const char *fmt, ...)
{
	char what[2 * PATH_MAX + 64];
	va_list ap;

	if (listener == NULL || listener->changed == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	listener->changed(what);
}

void core_copy_start(uint64_t total)
{
	if (listener != NULL && listener->copy_start != NULL)
		listener->copy_start(total);
}

void core_copy_advance(uint64_t bytes)
{
	if (listener != NULL && listener->copy_advance != NULL)
		listener->copy_advance(bytes);
}

void core_copy_end(void)
{
	if (listener != NULL && listener->copy_end != NULL)
		listener->copy_end();
}
