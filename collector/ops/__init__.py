"""Operations: is everything well, and who is told when it is not.

* ``health`` -- one health report (freshness, tick-data holes, jobs, disk, sizes and growth, backups)
                and the checks that fail; ``collector db status``, the monitor and ``run-all`` use it
* ``disk``   -- filesystems, table sizes, the size history (``size_samples``) and the newest backup
* ``alert``  -- one message per failure to a webhook (ntfy, Slack/Discord, Telegram, JSON) and/or
                ``sendmail``; repeats suppressed, a "resolved" message when all is well again
"""
