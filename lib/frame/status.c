/*
 * status.c: the exit statuses of DESIGN.md section 5, from the errno of a
 * failed call or the error a volume function recorded.
 */
#include <errno.h>
#include <stdio.h>

#include "frame.h"

int exit_status_for_errno(int err)
{
	switch (err) {
	case ENOENT:
		return EX_NOINPUT;
	case ENOTDIR:
	case EISDIR:
	case ELOOP:
	case EINVAL:
	case EFBIG:
	case ENXIO:
	case ENODEV:
	case ENAMETOOLONG:
	case EOVERFLOW:
		/* The path names something of the wrong kind. */
		return EX_DATAERR;
	case EEXIST:
	case ENOTEMPTY:
		return EX_CANTCREAT;
	case EACCES:
	case EPERM:
	case EROFS:
		return EX_NOPERM;
	case EWOULDBLOCK:
	case EBUSY:
	case ETXTBSY:
		return EX_TEMPFAIL;
	case EOPNOTSUPP:
		return EX_UNAVAILABLE;
	case ENOMEM:
	case EMFILE:
	case ENFILE:
		return EX_SOFTWARE;
	default:
		/* EIO, ENOSPC, EDQUOT and whatever else the disk may say. */
		return EX_IOERR;
	}
}

int volume_report_error(const struct volume *volume, int err)
{
	if (volume->error_reason != NULL)
		log_errx("%s: %s", volume->error_path, volume->error_reason);
	else
		log_errc(err, "%s", volume->error_path);
	return volume->error_usage ? EX_USAGE : exit_status_for_errno(err);
}

int stdout_close(void)
{
	/*
	 * A full disk or a closed pipe shows up only when the buffer is
	 * flushed; checking here turns that into an error, not silence.
	 */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fclose(stdout);
		return -1;
	}
	return fclose(stdout) == 0 ? 0 : -1;
}
