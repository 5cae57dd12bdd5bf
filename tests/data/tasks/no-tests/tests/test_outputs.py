# every check was deleted by mistake
